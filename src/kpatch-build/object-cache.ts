/**
 * The cache of original objects (compiled before the patch), one folder per kernel tree, shared
 * by every run on it. An entry's name says what it is for and what it holds:
 *   <object path>.<key>.<sha256 of its content>.o
 * (key: what it was compiled from, patched-objects.ts), so an entry is verified before use: one
 * whose content is not the hash in its name (truncated, overwritten by another object) is
 * removed, said, and compiled again. A run takes a private copy of the entry it uses, so another
 * run pruning it (after compiling the same object under another key) never takes it away. That
 * copy lives in the run's work directory, which the run alone reads and removes: it is written
 * plainly, not synced (an fsync there cost up to 1.4 s of wall time on a busy disk and made
 * nothing safer: after a crash the work directory is thrown away). Entries are written atomically
 * and durably.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const ENTRY = /^([0-9a-f]{32})\.([0-9a-f]{64})\.o$/;

export class ObjectCache {
  constructor(
    readonly dir: string,
    /** Told about an entry that failed its check (and was removed). */
    private readonly onNote: (message: string) => void = () => {},
  ) {}

  /**
   * Writes the cached original of `path` under `key` to `dest` when there is one whose content
   * is what its name says; false when there is none (a damaged one is removed, and said).
   */
  take(path: string, key: string, dest: string): boolean {
    for (const { file, hash } of this.entriesOf(path, (k) => k === key)) {
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue; // pruned just now
        throw e;
      }
      if (sha256(data) !== hash) {
        this.onNote(
          `cached original ${file} is not what was written (${data.length} bytes): compiling it again`,
        );
        rmSync(file, { force: true });
        continue;
      }
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, data);
      return true;
    }
    return false;
  }

  /** Keeps `from` (just compiled) as the original of `path` under `key`; drops its other keys' entries. */
  put(path: string, key: string, from: string): void {
    const data = readFileSync(from);
    const entry = join(this.dir, `${path}.${key}.${sha256(data)}.o`);
    mkdirSync(dirname(entry), { recursive: true });
    writeFileAtomic(entry, data);
    for (const old of this.entriesOf(path, (k) => k !== key)) rmSync(old.file, { force: true });
    // The layouts of before: <name>, <name>.key, <name>.<key>.o (unverifiable).
    const name = basename(path);
    const legacy = (e: string) =>
      e === name ||
      e === `${name}.key` ||
      (e.startsWith(`${name}.`) && /^[0-9a-f]{32}\.o$/.test(e.slice(name.length + 1)));
    for (const e of readdirSync(dirname(entry)))
      if (legacy(e)) rmSync(join(dirname(entry), e), { force: true });
  }

  private entriesOf(path: string, keyWanted: (key: string) => boolean): { file: string; hash: string }[] {
    const dir = dirname(join(this.dir, path));
    const prefix = `${basename(path)}.`;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    return names.flatMap((n) => {
      const m = n.startsWith(prefix) ? ENTRY.exec(n.slice(prefix.length)) : null;
      return m && keyWanted(m[1]!) ? [{ file: join(dir, n), hash: m[2]! }] : [];
    });
  }
}
