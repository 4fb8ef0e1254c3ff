/**
 * Where the running kernel shows itself. Always the real paths in use; unit tests of single
 * functions pass a fake tree (the CLI itself has no option to point elsewhere).
 */
import { existsSync } from "node:fs";
import { release } from "node:os";
import { KpatchError } from "../util/errors.js";

export interface KernelPaths {
  /** /sys/kernel/livepatch: one directory per registered patch. */
  livepatch: string;
  /** /proc: tasks, /proc/modules, /proc/cmdline. */
  proc: string;
  /** /sys/module: one directory per loaded module. */
  sysModule: string;
}

export const KERNEL_PATHS: KernelPaths = {
  livepatch: "/sys/kernel/livepatch",
  proc: "/proc",
  sysModule: "/sys/module",
};

/** The longest release the kernel reports (__NEW_UTS_LEN). */
const RELEASE_MAX = 64;

/**
 * Why `release` does not look like a kernel release (uname -r: "6.12.57+deb13-amd64",
 * "6.1.0-56-amd64", "6.12.0-rc1+"), or undefined when it does. A release names a directory
 * of installed patches, so nothing that could step out of it passes: no '/', no "..", no
 * leading '.' or '-', only letters, digits and . _ + ~ -.
 */
export function badKernelReleaseReason(release: string): string | undefined {
  if (release.length === 0) return "it is empty";
  if (release.length > RELEASE_MAX) return `a release has at most ${RELEASE_MAX} characters`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._+~-]*$/.test(release))
    return "a release starts with a letter or digit and has only letters, digits and . _ + ~ -";
  if (release.includes("..")) return "a release has no '..'";
  return undefined;
}

/** The release, or KPATCH_BAD_RELEASE when it does not look like one (see badKernelReleaseReason). */
export function checkKernelRelease(release: string): string {
  const why = badKernelReleaseReason(release);
  if (why) {
    throw new KpatchError(
      "KPATCH_BAD_RELEASE",
      `Cannot use '${JSON.stringify(release).slice(1, -1)}' as a kernel release: ${why}`,
    );
  }
  return release;
}

/** uname -r of the running kernel. */
export function runningRelease(): string {
  return release();
}

/**
 * Throws KPATCH_NO_LIVEPATCH unless the running kernel has the livepatch core
 * (CONFIG_LIVEPATCH shows /sys/kernel/livepatch even with no patch loaded).
 */
export function requireLivepatch(action: string, paths: KernelPaths = KERNEL_PATHS): void {
  if (existsSync(paths.livepatch)) return;
  throw new KpatchError(
    "KPATCH_NO_LIVEPATCH",
    `Cannot ${action}: the running kernel (${runningRelease()}) has no livepatch support (no ${paths.livepatch}; it needs CONFIG_LIVEPATCH)`,
  );
}

/** Throws KPATCH_NOT_ROOT unless the process runs as root. */
export function requireRoot(action: string): void {
  const uid = process.geteuid?.();
  if (uid === undefined || uid === 0) return;
  throw new KpatchError("KPATCH_NOT_ROOT", `Cannot ${action}: not root (uid ${uid}); run it as root`);
}
