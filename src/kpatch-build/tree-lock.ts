/**
 * One kpatch-build at a time per source tree: patches are applied to the tree in place, so two
 * runs at once would corrupt each other. The lock file records the holder's pid and the patches
 * it applied; a run that finds a lock of a dead process reverts what that process left applied
 * (it was killed mid-build) before taking the lock, so the tree is never left patched.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { KpatchError } from "../util/errors.js";
import { revertPatches, type SourcePatch } from "./patch-file.js";

interface LockState {
  pid: number;
  /** Patches applied and not yet reverted, in order. */
  applied: SourcePatch[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class TreeLock {
  private constructor(private readonly file: string) {}

  /** Take the lock on `tree` (waiting up to `timeoutMs` for another run to finish). */
  static async acquire(tree: string, timeoutMs = 600_000, onWait?: (pid: number) => void): Promise<TreeLock> {
    const file = join(tree, ".kpatch-ts-build.lock");
    const deadline = Date.now() + timeoutMs;
    let told = false;
    for (;;) {
      try {
        const fd = openSync(file, "wx");
        writeSync(fd, JSON.stringify({ pid: process.pid, applied: [] } satisfies LockState));
        closeSync(fd);
        return new TreeLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      let state: LockState | undefined;
      try {
        state = JSON.parse(readFileSync(file, "utf8")) as LockState;
      } catch {
        state = undefined; // being written: look again
      }
      if (state && !alive(state.pid)) {
        // A run died holding the lock: undo what it left applied, then take over.
        await revertPatches(tree, state.applied, { onlyApplied: true });
        rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new KpatchError(
          "TREE_BUSY",
          `Cannot patch ${tree}: another kpatch-build (pid ${state?.pid ?? "?"}) is using it`,
          { file: tree },
        );
      }
      if (state && !told) {
        onWait?.(state.pid);
        told = true;
      }
      await sleep(500);
    }
  }

  /** Record the patches about to be applied (so a later run can revert them if this one dies). */
  record(applied: readonly SourcePatch[]): void {
    writeFileSync(this.file, JSON.stringify({ pid: process.pid, applied: [...applied] } satisfies LockState));
  }

  release(): void {
    if (existsSync(this.file)) rmSync(this.file, { force: true });
  }
}
