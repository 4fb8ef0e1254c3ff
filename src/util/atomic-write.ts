/**
 * Files that are wholly there or not at all: written to a temporary file in the same directory
 * (so the rename cannot cross file systems), synced, then renamed over the target, then the
 * directory is synced. A crash or an error at any point leaves the old file (or none) and no
 * temporary file behind.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

let serial = 0;

/** A fresh temporary name beside `path` (hidden, unique in this process and across processes). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${serial++}`);
}

/** Writes `data` to `path` atomically and durably; creates the directory when needed. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    const fd = openSync(tmp, "w", mode);
    try {
      // writeSync may write less than asked (signals, full pipes on odd file systems): loop.
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
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

/**
 * Makes `path` with `create` (a compiler, a tool, a symlink call) writing to a temporary name
 * beside it, then renames it into place; on any failure the temporary file is removed and
 * `path` is left as it was. Returns what `create` returns.
 */
export async function createAtomic<T>(path: string, create: (tmp: string) => Promise<T> | T): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const result = await create(tmp);
    syncFile(tmp);
    renameSync(tmp, path);
    syncDir(dirname(path));
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** fsync of a file just written by another program (a symlink or directory is left alone). */
function syncFile(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    fsyncSync(fd);
  } catch {
    // A symlink to a directory, a directory: nothing to sync that the rename depends on.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
