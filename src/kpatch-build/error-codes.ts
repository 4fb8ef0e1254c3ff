/** kpatch-build's pipeline: the tree, the patches, the compiles (src/kpatch-build). */
export type BuildErrorCode =
  | "BUILD_FAILED" // a compile or make failed (its errors attached)
  | "BUILD_NO_COMMAND" // no kbuild record of how an object was built
  | "PATCH_NOT_FOUND"
  | "PATCH_EMPTY"
  | "PATCH_CORRUPT"
  | "PATCH_UNSUPPORTED"
  | "PATCH_UNSAFE_PATH"
  | "PATCH_FAILED" // it does not apply to the tree
  | "PATCH_INEXACT" // it applies only with fuzz or offsets (--allow-fuzz)
  | "TREE_NOT_FOUND"
  | "TREE_NOT_BUILT"
  | "TREE_CONFIG" // the config lacks what livepatch needs
  | "TREE_CONFIG_MISMATCH"
  | "TREE_COMPILER" // this machine's compiler is not the one that built the kernel
  | "TREE_BUSY"
  | "TREE_NEEDS_REPAIR"
  | "TREE_RESTORE_FAILED"
  | "TARGET_NOT_FOUND" // a module the patch changes is not in the tree
  | "NAME_TOO_LONG"
  | "NO_CHANGES" // nothing to patch (exit 3)
  | "TRIAGE_SOURCE" // triage: the update's two source trees cannot be compared
  | "INTERRUPTED"; // Ctrl-C, SIGTERM, SIGHUP (exit 130)

// Registered with every other area's codes: src/util/error-codes.ts.
declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    build: BuildErrorCode;
  }
}
