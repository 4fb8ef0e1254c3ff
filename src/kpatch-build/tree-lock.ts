/**
 * One kpatch-build at a time per source tree: patches are applied to the tree in place, so two
 * runs at once would corrupt each other. The lock file (.kpatch-ts-build.lock at the tree's
 * resolved top) names its holder by pid, process start time and boot id, so a pid reused after
 * a crash or a reboot is not taken for the holder; an empty or unreadable lock file is stale.
 *
 * Before the first patch is applied the holder saves every file the patches touch into the lock
 * file (tree-snapshot.ts); releasing puts them back, verifies, and only then removes the lock. A
 * run that finds the lock of a dead holder restores that holder's saved files the same way and
 * takes the lock over. Taking over is one winner's job: the candidates race to create a claim
 * file named after the stale lock (link(2) fails for all but one); a claim whose own holder died
 * is followed by the next one in a numbered chain. Every file is written whole to a temporary
 * name and then linked or renamed into place, so no reader ever sees half a record.
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  fstatSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tempPathFor, writeFileAtomic } from "../util/atomic-write.js";
import { currentBootId } from "../util/boot-id.js";
import { KpatchError } from "../util/errors.js";
import { interrupted, throwIfAborted } from "./interrupt.js";
import {
  changedSinceLeft,
  keepOriginals,
  restoreSnapshot,
  snapshotFiles,
  type TreeSnapshot,
  withLeftState,
} from "./tree-snapshot.js";

export const LOCK_NAME = ".kpatch-ts-build.lock";

/** A process, named so that a reused pid is not mistaken for it. */
export interface Holder {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks after boot. */
  start: string;
  /** /proc/sys/kernel/random/boot_id */
  boot: string;
  /** Its pid namespace (a container sharing the tree sees other pids): /proc/self/ns/pid. */
  pidns?: string;
}

interface LockRecord {
  /** Also at the top level, so an older kpatch-ts sees the lock as taken. */
  pid: number;
  holder: Holder;
  snapshot?: TreeSnapshot;
}

export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces and ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return undefined;
  }
}

function currentHolder(): Holder {
  const pidns = pidNamespace();
  return {
    pid: process.pid,
    start: processStart(process.pid) ?? "?",
    boot: currentBootId(),
    ...(pidns ? { pidns } : {}),
  };
}

/**
 * Whether the holder still runs. One in another pid namespace cannot be looked up from here:
 * it counts as alive for as long as this boot lasts.
 */
function holderAlive(h: Holder): boolean {
  if (h.boot !== currentBootId()) return false;
  if (h.pidns && h.pidns !== pidNamespace()) return true;
  return processStart(h.pid) === h.start;
}

function isHolder(h: unknown): h is Holder {
  const o = h as Holder | undefined;
  return typeof o?.pid === "number" && typeof o.start === "string" && typeof o.boot === "string";
}

/** The lock file as found: its identity (inode, time and bytes) and what it says. */
interface SeenLock {
  id: string;
  record?: LockRecord;
  /** An earlier kpatch-ts's lock: a pid, and the patches it meant to apply. */
  legacy?: { pid: number; applied: string[] };
  stale: boolean;
}

function readLock(file: string): SeenLock | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    const raw = readFileSync(fd);
    const id = createHash("sha256").update(`${st.ino}:${st.mtimeNs}:`).update(raw).digest("hex").slice(0, 16);
    let parsed: { pid?: unknown; holder?: unknown; applied?: { path?: string }[] } | undefined;
    try {
      parsed = JSON.parse(raw.toString("utf8"));
    } catch {
      parsed = undefined;
    }
    if (isHolder(parsed?.holder)) {
      const record = parsed as LockRecord;
      return { id, record, stale: !holderAlive(record.holder) };
    }
    if (typeof parsed?.pid === "number" && Number.isInteger(parsed.pid) && parsed.pid > 0) {
      const applied = (Array.isArray(parsed.applied) ? parsed.applied : []).map((p) => String(p?.path));
      return { id, legacy: { pid: parsed.pid, applied }, stale: processStart(parsed.pid) === undefined };
    }
    return { id, stale: true }; // empty or corrupt: nobody can be holding it
  } finally {
    closeSync(fd);
  }
}

export interface AcquireOptions {
  /** How long to wait for a live holder (default 10 minutes). */
  timeoutMs?: number;
  signal?: AbortSignal;
  onWait?: (pid: number) => void;
  onNote?: (message: string) => void;
}

export class TreeLock {
  private snapshot: TreeSnapshot | undefined;
  private readonly me = currentHolder();

  private constructor(
    /** The tree's resolved top: runs through different symlinks share one lock. */
    readonly tree: string,
  ) {}

  private get file(): string {
    return join(this.tree, LOCK_NAME);
  }

  /** Create `file` holding `text` unless it exists (link(2) is atomic and never overwrites). */
  private createExclusive(file: string, text: string): boolean {
    const tmp = tempPathFor(file);
    try {
      writeFileSync(tmp, text, { flag: "wx" });
      linkSync(tmp, file);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private recordText(): string {
    const r: LockRecord = {
      pid: this.me.pid,
      holder: this.me,
      ...(this.snapshot ? { snapshot: this.snapshot } : {}),
    };
    return JSON.stringify(r);
  }

  /** Replace the lock file with our record, whole. */
  private writeRecord(): void {
    writeFileAtomic(this.file, this.recordText());
  }

  /** Temporaries and claims beside the lock whose writers died. */
  private collectGarbage(currentId: string | undefined): void {
    for (const name of readdirSync(this.tree)) {
      if (!name.startsWith(`${LOCK_NAME}.`) && !name.startsWith(`.${LOCK_NAME}`)) continue;
      const tmp = /\.tmp-(\d+)-\d+$/.exec(name);
      if (tmp && processStart(Number(tmp[1])) === undefined) rmSync(join(this.tree, name), { force: true });
      const claim = /\.takeover-(\w+)-\d+$/.exec(name);
      if (claim && claim[1] !== currentId && !this.claimAlive(join(this.tree, name))) {
        rmSync(join(this.tree, name), { force: true });
      }
    }
  }

  private claimAlive(file: string): boolean {
    try {
      const h = JSON.parse(readFileSync(file, "utf8"));
      return isHolder(h) && holderAlive(h);
    } catch {
      return false;
    }
  }

  /**
   * Become the one run that cleans up after the stale lock `id`: "busy" when a live run already
   * is, "retry" when another run won the race just now.
   */
  private claim(id: string): string | "busy" | "retry" {
    const prefix = `${LOCK_NAME}.takeover-${id}-`;
    const levels = readdirSync(this.tree)
      .filter((n) => n.startsWith(prefix))
      .map((n) => Number(n.slice(prefix.length)))
      .filter(Number.isInteger);
    const top = levels.length ? Math.max(...levels) : -1;
    if (top >= 0 && this.claimAlive(join(this.tree, `${prefix}${top}`))) return "busy";
    const mine = join(this.tree, `${prefix}${top + 1}`);
    return this.createExclusive(mine, JSON.stringify(this.me)) ? mine : "retry";
  }

  private dropClaims(id: string): void {
    const prefix = `${LOCK_NAME}.takeover-${id}-`;
    for (const n of readdirSync(this.tree))
      if (n.startsWith(prefix)) rmSync(join(this.tree, n), { force: true });
  }

  /**
   * Take the lock on `tree`, waiting for a live holder (TREE_BUSY after the timeout). A stale
   * lock's saved files are restored first (TREE_RESTORE_FAILED if that cannot be done).
   */
  static async acquire(tree: string, options: AcquireOptions = {}): Promise<TreeLock> {
    const lock = new TreeLock(realpathSync(tree));
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    let told = false;
    const wait = async (pid: number | undefined) => {
      if (Date.now() > deadline) {
        throw new KpatchError(
          "TREE_BUSY",
          `Cannot patch ${lock.tree}: another kpatch-build (pid ${pid ?? "?"}) is using it`,
          { file: lock.tree },
        );
      }
      if (!told && pid) options.onWait?.(pid);
      told = true;
      try {
        await sleep(250, undefined, options.signal ? { signal: options.signal } : {});
      } catch {
        throw interrupted(options.signal?.reason);
      }
    };
    for (;;) {
      throwIfAborted(options.signal);
      if (lock.createExclusive(lock.file, lock.recordText())) return lock;
      const seen = readLock(lock.file);
      if (!seen) continue;
      if (!seen.stale) {
        await wait(seen.record?.holder.pid ?? seen.legacy?.pid);
        continue;
      }
      lock.collectGarbage(seen.id);
      if (seen.legacy?.applied.length) {
        throw new KpatchError(
          "TREE_NEEDS_REPAIR",
          `Cannot use ${lock.tree}: an earlier kpatch-ts (pid ${seen.legacy.pid}) died while applying ${seen.legacy.applied.join(" ")}; check that they are not applied (patch -R --dry-run), then remove ${lock.file}`,
          { file: lock.file },
        );
      }
      const claim = lock.claim(seen.id);
      if (claim === "busy") await wait(undefined);
      if (claim === "busy" || claim === "retry") continue;
      try {
        if (readLock(lock.file)?.id !== seen.id) continue; // taken over meanwhile
        const saved = seen.record?.snapshot;
        if (saved) {
          refuseChangedSince(lock.tree, saved, seen.record!.holder.pid, lock.file);
          options.onNote?.(
            `restoring ${saved.files.length} files of ${lock.tree} that a kpatch-build (pid ${seen.record!.holder.pid}) left patched`,
          );
          restoreSnapshot(lock.tree, saved);
        }
        lock.writeRecord();
        lock.dropClaims(seen.id);
        return lock;
      } finally {
        rmSync(claim, { force: true });
      }
    }
  }

  /**
   * Save the files the patches touch (relative to the tree) into the lock file before any of
   * them is patched: from now on, a run that dies leaves the next one what it needs to restore.
   */
  saveFiles(files: readonly string[]): void {
    const ours = files.find((f) => f.startsWith(LOCK_NAME) || f.startsWith(`.${LOCK_NAME}`));
    if (ours) {
      throw new KpatchError(
        "PATCH_UNSAFE_PATH",
        `Cannot patch ${ours}: the name is kpatch-build's tree lock`,
        {
          file: join(this.tree, ours),
        },
      );
    }
    this.snapshot = snapshotFiles(this.tree, files);
    this.writeRecord();
  }

  /**
   * Record what the run leaves in the saved files now (after each patch it applies): a run
   * that takes over after this one dies restores only files still in that state.
   */
  recordLeftState(): void {
    if (!this.snapshot) return;
    this.snapshot = withLeftState(this.tree, this.snapshot);
    this.writeRecord();
  }

  /** Put the saved files back, verify them, then remove the lock (kept if the restore fails). */
  release(): void {
    if (this.snapshot) restoreSnapshot(this.tree, this.snapshot);
    const seen = readLock(this.file);
    const h = seen?.record?.holder;
    if (
      h &&
      h.pid === this.me.pid &&
      h.start === this.me.start &&
      h.boot === this.me.boot &&
      h.pidns === this.me.pidns
    ) {
      rmSync(this.file, { force: true });
    }
  }
}

/**
 * A dead holder's saved files are restored only where they hold what it left (or the original):
 * a file changed since (a user's edit) is not overwritten. TREE_NEEDS_REPAIR then, the edit in
 * place, the saved original beside it, the lock kept, nothing restored.
 */
function refuseChangedSince(tree: string, saved: TreeSnapshot, pid: number, lockFile: string): void {
  const changed = changedSinceLeft(tree, saved);
  if (changed.length === 0) return;
  const kept = keepOriginals(tree, saved, changed);
  throw new KpatchError(
    "TREE_NEEDS_REPAIR",
    `Cannot restore ${tree} after a kpatch-build (pid ${pid}) that died: ${changed.join(" ")} changed since it left them${kept.length ? `; the originals it saved are in ${kept.join(" ")}` : ""}; keep the version you want, then remove ${lockFile}`,
    { file: lockFile },
  );
}
