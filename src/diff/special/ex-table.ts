import type { CodePieceKind, SpecialKind } from "./special-kind.js";

/** Exception fixups: struct exception_table_entry, first field the faulting instruction. */
export const exTable: SpecialKind = {
  name: "__ex_table",
  size: "ex",
  anchor: 0,
  loadTime: true,
  why: "exception fixups for user accesses and the like: sorted and searched by the fault handler",
};

/**
 * 4.x kernels' exception fixups: the recovery code of every user access in the object, in one
 * `.fixup` section, each snippet ending in a jump back after the faulting instruction. An
 * __ex_table entry's second field points to its snippet: cut like .altinstr_aux, a kept entry
 * takes its snippet along (5.x and later kernels have no .fixup: the handler type says it all).
 */
export const fixupCode: CodePieceKind = {
  name: ".fixup",
  why: "exception fixup code of older kernels, reached through __ex_table entries",
};

/**
 * 4.x's x86 refcount_t (<asm/refcount.h>, CONFIG_REFCOUNT_FULL=n): each check's error path,
 * `lea <counter>, %rcx; ud2`, sits in one `.text..refcount` for the whole object, with no symbol;
 * the function enters it with a `js`/`jle`, and the ud2's __ex_table entry (ex_handler_refcount)
 * resumes after the check. Cut like .altinstr_aux (a piece ends at its ud2); a carried piece
 * keeps its __ex_table entry.
 */
export const refcountCode: CodePieceKind = {
  name: ".text..refcount",
  why: "refcount_t overflow and underflow paths of 4.x kernels, trapping to ex_handler_refcount",
};
