import type { SpecialKind } from "./special-kind.js";

/**
 * ORC unwind data: .orc_unwind_ip holds one s32 code address per entry and .orc_unwind the
 * struct orc_entry at the same index; the two are cut together.
 */
export const orcUnwind: SpecialKind = {
  name: ".orc_unwind_ip",
  size: 4,
  anchor: 0,
  loadTime: true,
  parallel: { name: ".orc_unwind", size: "orc" },
  why: "ORC unwinder tables: unwind_module_init() sorts and uses them for the module's code",
};
