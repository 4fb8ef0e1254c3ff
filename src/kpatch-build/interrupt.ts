/**
 * Stopping kpatch-build (Ctrl-C, SIGTERM, SIGHUP): the front end aborts an AbortSignal that is
 * passed down; the pipeline checks it between steps and running compilers are sent SIGTERM. The
 * stop surfaces as INTERRUPTED, so the normal failure path restores the tree before the exit.
 */
import { KpatchError } from "../util/errors.js";
import type { ExecResult } from "../util/exec.js";

export function interrupted(why: unknown): KpatchError {
  return new KpatchError("INTERRUPTED", `Stopped by ${String(why)}; the source tree was restored`);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw interrupted(signal.reason);
}

/**
 * After a child failed: an interruption when the run was stopped, or when the child itself was
 * killed by a signal (a terminal's Ctrl-C reaches the whole process group, gcc included, maybe
 * before our own handler has run).
 */
export function throwIfChildStopped(r: Pick<ExecResult, "signal">, signal: AbortSignal | undefined): void {
  throwIfAborted(signal);
  if (r.signal === "SIGINT" || r.signal === "SIGTERM" || r.signal === "SIGHUP") throw interrupted(r.signal);
}
