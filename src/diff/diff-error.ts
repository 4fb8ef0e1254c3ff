import { type ErrorLocation, KpatchError } from "../util/errors.js";

/**
 * Stable codes of the differ's errors. The "cannot be applied live" ones (the CLI's exit 2) are
 * listed in REFUSAL_CODES; the others are bad inputs or missing facts (exit 1).
 */
export type DiffErrorCode =
  | "DIFF_DATA_CHANGED" // a .data/.bss or initialized static object changed
  | "DIFF_INIT_CHANGED" // an __init function or data changed
  | "DIFF_NO_FENTRY" // a changed function without the fentry call: ftrace cannot redirect it
  | "DIFF_UNSUPPORTED_SECTION" // a changed section the differ does not understand, or one a module cannot carry
  | "DIFF_IBT_SEALED" // the patch takes the address of a function whose endbr64 is (or may be) sealed
  | "DIFF_SPECIAL_NEEDS_KLP" // a special-section entry refers to a symbol only a klp relocation can reach
  | "DIFF_SYMBOL_MISMATCH" // a changed function's twin has another type or binding, or no unique match
  | "DIFF_SYMPOS_AMBIGUOUS" // cannot tell which same-named symbol of the target is ours
  | "DIFF_DATA_AMBIGUOUS" // data with state the new code uses: which same-named copy of the target is ours cannot be told, and a copy would split its state
  | "DIFF_SYMBOL_NOT_IN_TARGET" // a symbol the new code refers to is not in the target's symbol table
  | "DIFF_ENTRY_SIZE_UNKNOWN" // a special section must be split and its entry size is not known
  | "DIFF_BAD_ENTRY_SIZE" // a special section's size is not a multiple of its entry size
  | "DIFF_NO_FUNCTION_SECTIONS" // the object was not built with -ffunction-sections
  | "DIFF_BAD_DIRECTIVE" // a kpatch-macros.h directive the differ cannot honour (two pre_patch callbacks, ...)
  | "DIFF_BAD_INPUT"; // anything else wrong with the inputs or options

/** Errors that mean "this change cannot be applied live" (exit 2), as opposed to bad input. */
export const REFUSAL_CODES: ReadonlySet<string> = new Set<DiffErrorCode>([
  "DIFF_DATA_CHANGED",
  "DIFF_INIT_CHANGED",
  "DIFF_NO_FENTRY",
  "DIFF_UNSUPPORTED_SECTION",
  "DIFF_IBT_SEALED",
  "DIFF_SPECIAL_NEEDS_KLP",
  "DIFF_SYMBOL_MISMATCH",
  "DIFF_DATA_AMBIGUOUS",
  "DIFF_BAD_DIRECTIVE",
]);

declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    diff: DiffErrorCode;
  }
}

export class DiffError extends KpatchError {
  declare readonly code: DiffErrorCode;

  constructor(
    code: DiffErrorCode,
    message: string,
    location: ErrorLocation = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, location, options);
    this.name = "DiffError";
  }
}

export function isDiffError(e: unknown): e is DiffError {
  return e instanceof DiffError;
}
