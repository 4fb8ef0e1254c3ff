/**
 * Every stable error code, one union per area, so the compiler checks each code a library
 * throws and each one the CLI maps to an exit status (src/cli/main.ts). The ELF library and the
 * differ keep theirs beside their error classes (ElfErrorCode, DiffErrorCode). Scripts and
 * tests match on these strings: a code is renamed only with everything that matches it.
 */
import type { DiffErrorCode } from "../diff/diff-error.js";
import type { ElfErrorCode } from "../elf/elf-error.js";

/** Running other programs (src/util/exec.ts). */
export type ExecErrorCode = "EXEC_FAILED" | "EXEC_NOT_FOUND";

/** A file or directory named on a command line (src/util/user-file.ts callers). */
export type InputErrorCode = "INPUT_FILE" | "OUTPUT_DIR";

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
  | "INTERRUPTED"; // Ctrl-C, SIGTERM, SIGHUP (exit 130)

/**
 * A stock distribution kernel as kpatch-build's or the lab's target: its packages, version,
 * config and object index (src/kpatch-build/distro-*.ts, src/lab/distro-*.ts).
 */
export type DistroErrorCode =
  | "DISTRO_BAD_RELEASE"
  | "DISTRO_CONFIG_CHANGED"
  | "DISTRO_CONFIG_MISMATCH"
  | "DISTRO_HEADERS"
  | "DISTRO_IMAGE"
  | "DISTRO_INDEX"
  | "DISTRO_MODULE"
  | "DISTRO_NO_IMAGE"
  | "DISTRO_NO_PACKAGE"
  | "DISTRO_NO_SOURCE"
  | "DISTRO_VERSION_MISMATCH"
  | "TRIAGE_SOURCE"; // the update's two source trees cannot be compared

/** The run-pre check: the original build against the target kernel's code (src/run-pre). */
export type RunPreErrorCode = "RUNPRE_MISMATCH" | "RUNPRE_NO_TARGET";

/** Livepatch module generation (src/klp). */
export type KlpErrorCode =
  | "SIGN_FAILED" // signing the module (--sign) failed
  | "KLP_BAD_CALLBACK"
  | "KLP_BAD_SYMBOL"
  | "KLP_NO_FUNCTION"
  | "KLP_NO_SYMTAB"
  | "KLP_RELOC_NOT_ALLOC";

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

/** A kernel image and its symbols (src/kernel-image). */
export type KernelImageErrorCode =
  | "KIMAGE_EXTRACT_FAILED"
  | "KIMAGE_NOT_FOUND"
  | "KIMAGE_NOT_VMLINUX"
  | "KIMAGE_NO_SYMBOLS"
  | "KIMAGE_NO_VMLINUX"
  | "KSYMS_AMBIGUOUS"
  | "KSYMS_NOT_FOUND";

/** Debian packages (src/debian). */
export type DebianErrorCode =
  | "DEBIAN_BAD_NAME"
  | "DEBIAN_DOWNLOAD_FAILED"
  | "DEBIAN_PACKAGE_FAILED"
  | "DEBIAN_WRONG_PACKAGE";

/** The lab and its QEMU guest (src/lab). */
export type LabErrorCode =
  | "LAB_ACCEL"
  | "LAB_BUSYBOX"
  | "LAB_CONFIG"
  | "LAB_FILE"
  | "LAB_NODE"
  | "LAB_NOT_DEBIAN"
  | "LAB_NOT_ROOT"
  | "LAB_NOT_SET_UP"
  | "LAB_PACKAGES_MISSING"
  | "LAB_SOURCE"
  | "GUEST_SETUP"
  | "GUEST_TIMEOUT"
  | "GUEST_NO_RESULT"
  | "GUEST_PANIC"
  | "GUEST_OOPS"
  | "GUEST_CALL_TRACE";

export type ErrorCode =
  | ElfErrorCode
  | DiffErrorCode
  | ExecErrorCode
  | InputErrorCode
  | BuildErrorCode
  | DistroErrorCode
  | RunPreErrorCode
  | KlpErrorCode
  | KpatchErrorCode
  | KernelImageErrorCode
  | DebianErrorCode
  | LabErrorCode;
