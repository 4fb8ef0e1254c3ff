/**
 * The one error type library code throws. `code` is stable (scripts and tests match on it;
 * src/util/error-codes.ts lists them all);
 * `location` names the file, section, symbol and offset the error is about, printed the
 * objtool way: `fs/proc/cmdline.o: error: cmdline_proc_show+0x1a: <message>`.
 */
import type { ErrorCode } from "./error-codes.js";

export interface ErrorLocation {
  file?: string;
  section?: string;
  symbol?: string;
  offset?: number;
}

export class KpatchError extends Error {
  readonly code: ErrorCode;
  readonly location: ErrorLocation;

  constructor(code: ErrorCode, message: string, location: ErrorLocation = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KpatchError";
    this.code = code;
    this.location = location;
  }

  /** `file: error: where: message [CODE]`, the way objtool and the compiler print. */
  format(severity = "error"): string {
    const { file, section, symbol, offset } = this.location;
    const parts: string[] = [];
    if (file) parts.push(file);
    parts.push(severity);
    let where = "";
    if (symbol) where = symbol;
    else if (section) where = section;
    if (offset !== undefined) where += `${where ? "+" : ""}0x${offset.toString(16)}`;
    if (symbol && section) where = `${section}:${where}`;
    if (where) parts.push(where);
    return `${parts.join(": ")}: ${this.message} [${this.code}]`;
  }
}

export function isKpatchError(e: unknown): e is KpatchError {
  return e instanceof KpatchError;
}
