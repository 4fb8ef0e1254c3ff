/**
 * The kbuild records of a build tree, read once and kept: every kernel object with its source,
 * target and the files kbuild recorded it depends on (resolved), cached under the tree's path and
 * trusted only while every record file and module list (modules.order, each .mod) is as it was
 * (mtime and size) and every directory of the tree holds the same of them and the same
 * subdirectories (listed again only when its mtime changed). A lab tree has ~1,600 records: reading and parsing them all is ~1.5 s of CPU;
 * checking the stamps is a few thousand stat calls.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { type KbuildObject, kernelObjects } from "./kbuild-tree.js";

/** Bumped when the stored form changes: an index of another version is rebuilt. */
const INDEX_VERSION = 2;

/** [path relative to the tree, mtimeMs, size] of a record or module list. */
type Stamp = [string, number, number];
/**
 * [path relative to the tree, mtimeMs, what it holds that counts]: a directory whose mtime
 * changed is listed again, and the index holds while the same records, module lists and
 * subdirectories are there (a patch applied in an in-tree build's source directory changes the
 * directory, not its records).
 */
type DirStamp = [string, number, string[]];

interface StoredIndex {
  version: number;
  tree: string;
  dirs: DirStamp[];
  stamps: Stamp[];
  /** Every resolved path the objects name, once. */
  paths: string[];
  /** [object path, source index, target, dependency indexes] */
  objects: [string, number, string, number[]][];
}

export interface KbuildIndex {
  objects: KbuildObject[];
  /** Objects compiled from, or recorded as depending on, any of the given absolute paths. */
  dependingOn(files: readonly string[]): KbuildObject[];
  /** True when the records were read now (no cached index, or the tree changed). */
  fresh: boolean;
}

function stampOf(tree: string, rel: string): Stamp | undefined {
  try {
    const st = statSync(join(tree, rel));
    return [rel, st.mtimeMs, st.size];
  } catch {
    return undefined;
  }
}

/** What of directory `rel` the index depends on: its records and module lists, its subdirectories ("name/"). */
function dirContents(tree: string, rel: string): string[] {
  const names: string[] = [];
  for (const ent of readdirSync(join(tree, rel), { withFileTypes: true })) {
    if (ent.isDirectory()) {
      if (ent.name !== "source" && ent.name !== ".tmp_versions") names.push(`${ent.name}/`);
    } else if (
      /^\..+\.o\.cmd$/.test(ent.name) ||
      ent.name.endsWith(".mod") ||
      (rel === "" && ent.name === "modules.order")
    )
      names.push(ent.name);
  }
  return names.sort();
}

/** The stamps an index of `tree` depends on: its directories, its records, its module lists. */
function treeStamps(tree: string): { dirs: DirStamp[]; stamps: Stamp[] } {
  const dirs: DirStamp[] = [];
  const stamps: Stamp[] = [];
  const walk = (rel: string): void => {
    const mtime = statSync(join(tree, rel)).mtimeMs;
    const names = dirContents(tree, rel);
    dirs.push([rel, mtime, names]);
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      if (name.endsWith("/")) walk(child.slice(0, -1));
      else {
        const st = stampOf(tree, child);
        if (st) stamps.push(st);
      }
    }
  };
  walk("");
  return { dirs, stamps };
}

function dirHolds(tree: string, [rel, mtime, names]: DirStamp): boolean {
  try {
    if (statSync(join(tree, rel)).mtimeMs === mtime) return true;
    const now = dirContents(tree, rel);
    return now.length === names.length && now.every((n, i) => n === names[i]);
  } catch {
    return false;
  }
}

function stampsHold(tree: string, stored: StoredIndex): boolean {
  return (
    stored.dirs.every((d) => dirHolds(tree, d)) &&
    stored.stamps.every(([rel, mtime, size]) => {
      const now = stampOf(tree, rel);
      return now !== undefined && now[1] === mtime && now[2] === size;
    })
  );
}

function indexFile(tree: string): string {
  return cachePath("kbuild-index", `${createHash("sha256").update(tree).digest("hex").slice(0, 24)}.json`);
}

function readStored(tree: string): StoredIndex | undefined {
  const file = indexFile(tree);
  if (!existsSync(file)) return undefined;
  try {
    const stored = JSON.parse(readFileSync(file, "utf8")) as StoredIndex;
    if (stored.version !== INDEX_VERSION || stored.tree !== tree) return undefined;
    return stampsHold(tree, stored) ? stored : undefined;
  } catch {
    // A torn or foreign file is rebuilt, never trusted.
    return undefined;
  }
}

function buildStored(tree: string): StoredIndex {
  // Stamps first: a record rewritten while it is read leaves an older stamp, so the next run rebuilds.
  const { dirs, stamps } = treeStamps(tree);
  const paths: string[] = [];
  const ids = new Map<string, number>();
  // Keyed by the path as recorded: the records repeat the same few thousand headers.
  const recorded = new Map<string, number>();
  const id = (p: string) => {
    let i = recorded.get(p);
    if (i !== undefined) return i;
    const full = resolve(tree, p);
    i = ids.get(full);
    if (i === undefined) {
      i = paths.push(full) - 1;
      ids.set(full, i);
    }
    recorded.set(p, i);
    return i;
  };
  const objects: StoredIndex["objects"] = kernelObjects(tree).map(({ obj, deps }) => [
    obj.path,
    id(obj.source),
    obj.target,
    [...new Set(deps.map(id))],
  ]);
  return { version: INDEX_VERSION, tree, dirs, stamps, paths, objects };
}

/** The index of the build tree `tree` (an absolute, resolved path), from the cache when still true. */
export function kbuildIndex(tree: string): KbuildIndex {
  let stored = readStored(tree);
  const fresh = stored === undefined;
  if (!stored) {
    stored = buildStored(tree);
    writeFileAtomic(indexFile(tree), JSON.stringify(stored));
  }
  const { paths } = stored;
  const objects = stored.objects.map(([path, source, target]) => ({ path, source: paths[source]!, target }));
  const entries = stored.objects;
  return {
    objects,
    fresh,
    dependingOn(files) {
      const wanted = new Set(files.map((f) => paths.indexOf(resolve(tree, f))).filter((i) => i >= 0));
      return objects.filter((_, i) => {
        const [, source, , deps] = entries[i]!;
        return wanted.has(source) || deps.some((d) => wanted.has(d));
      });
    },
  };
}
