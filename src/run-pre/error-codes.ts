/** The run-pre check: the original build against the target kernel's code (src/run-pre). */
export type RunPreErrorCode = "RUNPRE_MISMATCH" | "RUNPRE_NO_TARGET";

// Registered with every other area's codes: src/util/error-codes.ts.
declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    runPre: RunPreErrorCode;
  }
}
