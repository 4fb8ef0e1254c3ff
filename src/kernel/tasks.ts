/**
 * Tasks and the livepatch consistency model. Each task (thread) shows its patch state in
 * /proc/<pid>/task/<tid>/patch_state: -1 when no transition runs, else 0 (unpatched) or 1
 * (patched). A task whose state is not yet the transition's target blocks it: the core only
 * switches a task when none of the functions being changed is on its stack
 * (/proc/<pid>/task/<tid>/stack, root only). Those files need the kernel's LIVEPATCH and
 * STACKTRACE.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KERNEL_PATHS, type KernelPaths } from "./kernel-paths.js";
import type { LoadedPatch } from "./livepatch-sysfs.js";

/** task_struct.flags bit of kernel threads (include/linux/sched.h). */
const PF_KTHREAD = 0x00200000;

export interface TaskState {
  /** Thread group (process) id. */
  pid: number;
  /** Thread id (equal to pid for single-threaded tasks and kthreads). */
  tid: number;
  comm: string;
  kthread: boolean;
  /** -1: no transition; 0: unpatched; 1: patched. */
  patchState: number;
}

export interface BlockingTask extends TaskState {
  /** The task's kernel stack, innermost first, as "function+0xoff/0xsize" (empty if unreadable). */
  stack: string[];
  /** The first function on the stack that the transition changes, "object:function" style. */
  function: string | undefined;
}

/** Every thread with a readable patch state. */
export function readTasks(paths: KernelPaths = KERNEL_PATHS): TaskState[] {
  const out: TaskState[] = [];
  for (const pidDir of numericEntries(paths.proc)) {
    const pid = Number(pidDir);
    for (const tidDir of numericEntries(join(paths.proc, pidDir, "task"))) {
      const dir = join(paths.proc, pidDir, "task", tidDir);
      const state = readText(join(dir, "patch_state"));
      if (state === undefined) continue;
      const stat = readText(join(dir, "stat")) ?? "";
      out.push({
        pid,
        tid: Number(tidDir),
        comm: (readText(join(dir, "comm")) ?? "?").trim(),
        kthread: (statFlags(stat) & PF_KTHREAD) !== 0,
        patchState: Number(state.trim()),
      });
    }
  }
  return out;
}

/** The flags field (the 9th) of a /proc/<pid>/stat line; the comm may hold spaces and ')'. */
export function statFlags(stat: string): number {
  const close = stat.lastIndexOf(")");
  if (close < 0) return 0;
  const fields = stat.slice(close + 2).split(" ");
  // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags
  return Number(fields[6] ?? 0) || 0;
}

/**
 * The tasks that keep a patch's transition from finishing: their state is not the target
 * (1 while patching, 0 while unpatching), with their stacks and where each one sits: in a
 * function being replaced (patching) or in the patch's own code (unpatching, a task inside a
 * new function).
 */
export function blockingTasks(patch: LoadedPatch, paths: KernelPaths = KERNEL_PATHS): BlockingTask[] {
  const target = patch.enabled ? 1 : 0;
  const changed = new Map<string, string>();
  for (const obj of patch.objects)
    for (const f of obj.functions)
      changed.set(f.name, obj.name === "vmlinux" ? f.name : `${f.name} [${obj.name}]`);
  const where = (frame: string): string | undefined => {
    const fn = frameFunction(frame);
    if (fn === undefined) return undefined;
    if (frameModule(frame) === patch.name) return `${fn} [${patch.name}] (the patch's new code)`;
    return changed.get(fn);
  };
  return readTasks(paths)
    .filter((t) => t.patchState !== -1 && t.patchState !== target)
    .map((t) => {
      const stack = readStack(t, paths);
      return { ...t, stack, function: stack.map(where).find((w) => w !== undefined) };
    });
}

/** "[<0>] schedule_timeout+0x9e/0x150" or "schedule_timeout+0x9e/0x150 [mod]" → schedule_timeout */
export function frameFunction(frame: string): string | undefined {
  const m = /^(?:\[<[0-9a-fx]+>\]\s+)?([A-Za-z0-9_.$]+)\+0x/.exec(frame.trim());
  return m?.[1];
}

/** The module a stack frame is in ("f+0x1/0x2 [mod]" → mod), undefined for vmlinux. */
function frameModule(frame: string): string | undefined {
  return /\[([A-Za-z0-9_]+)\]\s*$/.exec(frame.trim())?.[1];
}

function readStack(t: TaskState, paths: KernelPaths): string[] {
  const text = readText(join(paths.proc, String(t.pid), "task", String(t.tid), "stack"));
  if (!text) return [];
  return text
    .split("\n")
    .map((l) => l.replace(/^\[<[0-9a-fx]+>\]\s+/, "").trim())
    .filter(Boolean);
}

/**
 * Signals user-space tasks so they leave the kernel and switch: SIGSTOP then SIGCONT, which a
 * process does not see beyond an interrupted, restarted system call. Kernel threads cannot be
 * signalled from user space (the kernel wakes them itself every 15 s of a stalled transition).
 * Returns the tasks signalled.
 */
export function signalTasks(tasks: readonly TaskState[]): TaskState[] {
  const done: TaskState[] = [];
  const seen = new Set<number>();
  for (const t of tasks) {
    if (t.kthread || seen.has(t.pid) || t.pid === process.pid) continue;
    seen.add(t.pid);
    try {
      process.kill(t.pid, "SIGSTOP");
      process.kill(t.pid, "SIGCONT");
      done.push(t);
    } catch {
      // The task exited meanwhile: nothing to signal.
    }
  }
  return done;
}

/** One line per task: "pid 45 (kpatch-stall) kthread, in stall_loop [mod]" plus its top frames. */
export function describeTask(t: BlockingTask, frames = 4): string {
  const what = t.function ? `sits in ${t.function}` : "is not in a changed function (unreliable stack?)";
  const head = `pid ${t.pid}${t.tid !== t.pid ? ` tid ${t.tid}` : ""} (${t.comm})${t.kthread ? " kernel thread" : ""} ${what}`;
  const stack = t.stack.slice(0, frames).map((f) => `      ${f}`);
  return [head, ...stack].join("\n");
}

function numericEntries(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}
