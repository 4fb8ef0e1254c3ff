/**
 * Waiting for a patch transition (/sys/kernel/livepatch/<patch>/transition back to 0), with
 * the stall handling of the issue: after `signalAfterMs` the tasks that still block it are
 * signalled once; after `timeoutMs` the wait gives up and returns them, each with the changed
 * function it sits in. A patch whose directory disappears has finished too (a disabled patch
 * is unregistered once its unpatching transition completes).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { KERNEL_PATHS, type KernelPaths } from "./kernel-paths.js";
import { findPatch } from "./livepatch-sysfs.js";
import { type BlockingTask, blockingTasks, signalTasks, type TaskState } from "./tasks.js";

export interface TransitionOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  /** Signal the blocking tasks once after this long (default 5 s; Infinity: never). */
  signalAfterMs?: number;
  /** Poll interval (default 100 ms). */
  pollMs?: number;
  paths?: KernelPaths;
  /** Progress messages ("signalled 2 tasks ..."). */
  log?: (message: string) => void;
}

export interface TransitionResult {
  done: boolean;
  elapsedMs: number;
  /** Tasks signalled while waiting. */
  signalled: TaskState[];
  /** When not done: the tasks still blocking at the timeout. */
  blockers: BlockingTask[];
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_SIGNAL_AFTER_MS = 5_000;

export async function waitForTransition(
  name: string,
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const paths = options.paths ?? KERNEL_PATHS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signalAfterMs = options.signalAfterMs ?? DEFAULT_SIGNAL_AFTER_MS;
  const pollMs = options.pollMs ?? 100;
  const started = performance.now();
  const signalled: TaskState[] = [];
  let hasSignalled = false;
  for (;;) {
    const elapsedMs = performance.now() - started;
    const patch = findPatch(name, paths);
    if (!patch?.transition) return { done: true, elapsedMs, signalled, blockers: [] };
    if (!hasSignalled && elapsedMs >= signalAfterMs) {
      hasSignalled = true;
      const blockers = blockingTasks(patch, paths);
      signalled.push(...signalTasks(blockers));
      const kthreads = blockers.filter((t) => t.kthread).length;
      options.log?.(
        `${name}: transition still running after ${(elapsedMs / 1000).toFixed(1)} s; signalled ${signalled.length} task(s)${kthreads ? `, ${kthreads} kernel thread(s) cannot be signalled` : ""}`,
      );
    }
    if (elapsedMs >= timeoutMs) {
      return { done: false, elapsedMs, signalled, blockers: blockingTasks(patch, paths) };
    }
    await sleep(pollMs);
  }
}
