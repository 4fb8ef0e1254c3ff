/** The kpatch manager and the running kernel (src/kernel, src/manage, src/cli/kpatch.ts). */
export type KpatchErrorCode =
  | "KPATCH_ALREADY_LOADED"
  | "KPATCH_BACKOUT_FAILED"
  | "KPATCH_BAD_NAME"
  | "KPATCH_BAD_RELEASE"
  | "KPATCH_BUSY"
  | "KPATCH_FAKE_KERNEL"
  | "KPATCH_INSMOD_FAILED"
  | "KPATCH_UNSIGNED"
  | "KPATCH_NOT_FOUND"
  | "KPATCH_NOT_INSTALLED"
  | "KPATCH_NOT_LIVEPATCH"
  | "KPATCH_NOT_LOADED"
  | "KPATCH_NOT_MODULE"
  | "KPATCH_NOT_ROOT"
  | "KPATCH_NO_FILE"
  | "KPATCH_NO_LIVEPATCH"
  | "KPATCH_RMMOD_FAILED"
  | "KPATCH_RUNPRE_MISMATCH" // the functions the module replaces are not where the livepatch core looks, or not the code it recorded (exit 4)
  | "KPATCH_RUNPRE_RECORD" // the module's .kpatch.runpre section is unreadable
  | "KPATCH_STATE_IO"
  | "KPATCH_SYSFS_WRITE"
  | "KPATCH_TRANSITION_STALLED" // a transition did not finish in time (exit 3)
  | "KPATCH_VERMAGIC";

// Registered with every other area's codes: src/util/error-codes.ts.
declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    kpatch: KpatchErrorCode;
  }
}
