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
