/**
 * Where installed patches live: /var/lib/kpatch/<kernel release>/<module>.ko, the same layout
 * as kpatch's, so modules installed by either are found by both. The crash-loop guard keeps
 * its markers beside them in .boot/. $KPATCH_LIB_DIR moves the whole tree (packaging, tests).
 * Every write is atomic and durable (src/util/atomic-write.ts): a crash leaves either the old
 * file or the new one.
 */
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { checkKernelRelease } from "../kernel/kernel-paths.js";
import { syncDir, writeFileAtomic } from "../util/atomic-write.js";
import { KpatchError } from "../util/errors.js";

export function libDir(): string {
  return process.env["KPATCH_LIB_DIR"] || "/var/lib/kpatch";
}

/** <root>/<release>; the release is checked first (KPATCH_BAD_RELEASE), so it cannot step out. */
export function kernelDir(kernelRelease: string, root = libDir()): string {
  return join(root, checkKernelRelease(kernelRelease));
}

export function bootDir(kernelRelease: string, root = libDir()): string {
  return join(kernelDir(kernelRelease, root), ".boot");
}

/** Writes a file so that it is either wholly there or not at all, even across a crash. */
export function writeFileDurably(path: string, data: string | Uint8Array, mode = 0o644): void {
  try {
    writeFileAtomic(path, data, mode);
  } catch (e) {
    throw stateError("write", path, e);
  }
}

/** Removes a file and syncs its directory (no error when it is not there). */
export function removeFileDurably(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch (e) {
    throw stateError("remove", path, e);
  }
  syncDir(dirname(path));
}

/** A file system error on kpatch's own state: the user's problem to fix (a full or broken disk). */
function stateError(action: string, path: string, e: unknown): KpatchError {
  const err = e as NodeJS.ErrnoException;
  return new KpatchError(
    "KPATCH_STATE_IO",
    `Cannot ${action} ${path}: ${err.code ?? ""} ${err.message}`.replace(/\s+/g, " "),
    { file: path },
    { cause: e },
  );
}
