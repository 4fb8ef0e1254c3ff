import type { SpecialKind } from "./special-kind.js";

/** WARN()/BUG() sites: struct bug_entry, first field the (relative) address of the ud2. */
export const bugTable: SpecialKind = {
  name: "__bug_table",
  size: "bug",
  anchor: 0,
  loadTime: true,
  why: "BUG()/WARN() sites: the trap handler looks the faulting address up here (module_bug_finalize)",
};
