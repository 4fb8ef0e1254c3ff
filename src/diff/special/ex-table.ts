import type { SpecialKind } from "./special-kind.js";

/** Exception fixups: struct exception_table_entry, first field the faulting instruction. */
export const exTable: SpecialKind = {
  name: "__ex_table",
  size: "ex",
  anchor: 0,
  loadTime: true,
  why: "exception fixups for user accesses and the like: sorted and searched by the fault handler",
};
