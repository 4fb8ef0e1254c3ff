/**
 * Files and directories a user names on a command line, checked the one way every command
 * needs: an input must be a regular file we can read (a directory, a FIFO or a device is
 * refused, never opened for reading: a FIFO would hang the command), an output must go to a
 * directory that exists. Each failure is a KpatchError with one line naming the path.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { ErrorCode } from "./error-codes.js";
import { KpatchError } from "./errors.js";

/** What a non-regular file is, for a message: "a directory", "a FIFO", ... */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** The reason an fs call failed, in words. */
function fsReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case "ENOENT":
      return "no such file or directory";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ENOTDIR":
      return "a component of the path is not a directory";
    case "ELOOP":
      return "too many levels of symbolic links";
    case "EISDIR":
      return "it is a directory";
    default:
      return err.code ? `${err.code}` : String(err.message ?? e);
  }
}

function notRegular(path: string, st: Stats, code: ErrorCode): KpatchError {
  const kind = kindOf(st);
  const what = kind === "not a regular file" ? kind : `${kind}, not a regular file`;
  return new KpatchError(code, `Cannot read ${path}: ${what}`, { file: path });
}

/**
 * The whole contents of a regular file. Errors carry `code` (the caller's area: KPATCH_NO_FILE,
 * DIFF_BAD_INPUT, ...). The file is checked before it is opened and again once open (it may
 * have been swapped in between); it is opened non-blocking, so a FIFO cannot hang us.
 */
export function readUserFile(path: string, code: ErrorCode): Buffer {
  checkUserFile(path, code);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new KpatchError(code, `Cannot read ${path}: ${fsReason(e)}`, { file: path }, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path, st, code);
    return readFileSync(fd);
  } catch (e) {
    if (e instanceof KpatchError) throw e;
    throw new KpatchError(code, `Cannot read ${path}: ${fsReason(e)}`, { file: path }, { cause: e });
  } finally {
    closeSync(fd);
  }
}

/** Throws (with `code`) unless `path` is an existing regular file (symbolic links followed). */
export function checkUserFile(path: string, code: ErrorCode): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new KpatchError(code, `Cannot read ${path}: ${fsReason(e)}`, { file: path }, { cause: e });
  }
  if (!st.isFile()) throw notRegular(path, st, code);
}

/** Throws (with `code`) unless `dir` is an existing directory. */
export function checkUserDir(dir: string, code: ErrorCode, what = "directory"): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    throw new KpatchError(
      code,
      `Cannot use ${dir} as the ${what}: ${fsReason(e)}`,
      { file: dir },
      { cause: e },
    );
  }
  if (!st.isDirectory())
    throw new KpatchError(code, `Cannot use ${dir} as the ${what}: not a directory`, { file: dir });
}

/** Throws (with `code`) unless the directory an output file goes to exists. */
export function checkOutputFile(path: string, code: ErrorCode): void {
  checkUserDir(dirname(resolve(path)), code, `directory for ${path}`);
}
