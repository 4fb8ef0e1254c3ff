/**
 * The kbuild records of a build tree, read once and kept: every kernel object with its source,
 * target and the files kbuild recorded it depends on (resolved), cached under the tree's path and
 * trusted only while every record file, every directory of the tree (a record added or removed
 * changes its directory) and the module lists (modules.order, each .mod) are as they were
 * (mtime and size). A lab tree has ~1,600 records: reading and parsing them all is ~1.5 s of CPU;
 * checking the stamps is a few thousand stat calls.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { type KbuildObject, kernelObjects } from "./kbuild-tree.js";

/** Bumped when the stored form changes: an index of another version is rebuilt. */
const INDEX_VERSION = 1;

/** [path relative to the tree, mtimeMs, size] */
type Stamp = [string, number, number];

interface StoredIndex {
  version: number;
  tree: string;
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

/** The stamps an index of `tree` depends on: its directories, its records, its module lists. */
function treeStamps(tree: string): Stamp[] {
  const stamps: Stamp[] = [];
  const add = (rel: string) => {
    const s = stampOf(tree, rel);
    if (s) stamps.push(s);
  };
  const walk = (rel: string): void => {
    add(rel);
    for (const ent of readdirSync(join(tree, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (ent.name !== "source" && ent.name !== ".tmp_versions") walk(child);
      } else if (/^\..+\.o\.cmd$/.test(ent.name) || ent.name.endsWith(".mod") || child === "modules.order")
        add(child);
    }
  };
  walk("");
  return stamps;
}

function stampsHold(tree: string, stamps: readonly Stamp[]): boolean {
  return stamps.every(([rel, mtime, size]) => {
    const now = stampOf(tree, rel);
    return now !== undefined && now[1] === mtime && now[2] === size;
  });
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
    return stampsHold(tree, stored.stamps) ? stored : undefined;
  } catch {
    // A torn or foreign file is rebuilt, never trusted.
    return undefined;
  }
}

function buildStored(tree: string): StoredIndex {
  // Stamps first: a record rewritten while it is read leaves an older stamp, so the next run rebuilds.
  const stamps = treeStamps(tree);
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
  return { version: INDEX_VERSION, tree, stamps, paths, objects };
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
