/**
 * Every stable error code, one union per area, so the compiler checks each code a library
 * throws and each one the CLI maps to an exit status (src/cli/main.ts). util is the ground
 * floor: it names only its own codes and each area registers its union here from its own
 * home (`declare module "../util/error-codes.js"`, one key per union):
 *   src/elf/elf-error.ts, src/diff/diff-error.ts, src/kpatch-build/error-codes.ts,
 *   src/klp/error-codes.ts, src/run-pre/error-codes.ts, src/kernel/error-codes.ts,
 *   src/kernel-image/error-codes.ts, src/debian/error-codes.ts, src/lab/error-codes.ts.
 * Scripts and tests match on these strings: a code is renamed only with everything that
 * matches it.
 */

/** Running other programs (src/util/exec.ts). */
type ExecErrorCode = "EXEC_FAILED" | "EXEC_NOT_FOUND";

/** A file or directory named on a command line (src/util/user-file.ts callers). */
type InputErrorCode = "INPUT_FILE" | "OUTPUT_DIR";

/** Each area's union of codes, by area; the areas above add theirs. */
export interface ErrorCodeRegistry {
  exec: ExecErrorCode;
  input: InputErrorCode;
}

export type ErrorCode = ErrorCodeRegistry[keyof ErrorCodeRegistry];
