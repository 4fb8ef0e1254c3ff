/**
 * Ctrl-C and SIGTERM during kpatch-build: the front end calls requestStop(); the pipeline
 * checks between steps (each object compile, each phase) and throws INTERRUPTED, so the
 * normal failure path reverts the patches and restores the tree before the process exits.
 */
import { KpatchError } from "../util/errors.js";

let stopRequested: string | undefined;

export function requestStop(why: string): void {
  stopRequested = why;
}

export function checkStop(): void {
  if (stopRequested)
    throw new KpatchError("INTERRUPTED", `Stopped by ${stopRequested}; the source tree was restored`);
}

/** For tests and long-lived callers. */
export function clearStop(): void {
  stopRequested = undefined;
}
