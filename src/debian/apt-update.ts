/**
 * apt-get that waits for another apt run's lists lock instead of failing. DPkg::Lock::Timeout
 * makes apt-get wait for dpkg's lock, but `apt-get update` fails at once on the lists
 * directory's ("Could not get lock .../lists/lock", apt 2.6): two set-up steps or two tests
 * updating the same lists at once would fail. A Runner for execCheck's `run` (or called alone).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type ExecResult, exec, type Runner } from "../util/exec.js";

/** How long another run may hold the lists (an update of four suites over a slow mirror). */
const LISTS_WAIT_MS = 600_000;
const LISTS_LOCKED = /^E: (Could not get lock \S*lists\/lock|Unable to lock directory \S*lists\/)/m;

/** True when apt-get failed only because another apt run holds the lists directory. */
export function isListsLocked(r: Pick<ExecResult, "code" | "stderr">): boolean {
  return r.code !== 0 && LISTS_LOCKED.test(r.stderr);
}

/** Runs the command again every 2 s while it fails on the lists lock, for up to 10 min. */
export const waitForAptLists: Runner = async (cmd, args, options) => {
  const until = Date.now() + LISTS_WAIT_MS;
  for (;;) {
    const r = await exec(cmd, args, options);
    if (!isListsLocked(r) || Date.now() >= until) return r;
    await sleep(2000);
  }
};
