/**
 * Where installed patches live: /var/lib/kpatch/<kernel release>/<module>.ko, the same layout
 * as kpatch's, so modules installed by either are found by both. The crash-loop guard keeps
 * its markers beside them in .boot/. $KPATCH_LIB_DIR moves the whole tree (packaging, tests).
 * Every write goes to a temporary file that is synced, then renamed over the target, then the
 * directory is synced: a crash right after leaves either the old file or the new one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export function libDir(): string {
  return process.env["KPATCH_LIB_DIR"] || "/var/lib/kpatch";
}

export function kernelDir(kernelRelease: string, root = libDir()): string {
  return join(root, kernelRelease);
}

export function bootDir(kernelRelease: string, root = libDir()): string {
  return join(kernelDir(kernelRelease, root), ".boot");
}

/** Writes a file so that it is either wholly there or not at all, even across a crash. */
export function writeFileDurably(path: string, data: string | Uint8Array, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    const fd = openSync(tmp, "w", mode);
    try {
      writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dirname(path));
}

/** Removes a file and syncs its directory (no error when it is not there). */
export function removeFileDurably(path: string): void {
  rmSync(path, { force: true });
  syncDir(dirname(path));
}

export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some file systems cannot sync a directory; the rename is still atomic.
  }
}
