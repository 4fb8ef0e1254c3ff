/**
 * Build the two versions of every object a patch changes, without building the kernel: the
 * objects come from the target's build tree (the one that built the running kernel), whose
 * kbuild records say which objects depend on which files and how each was compiled. Each
 * candidate is compiled with -ffunction-sections -fdata-sections before the patch (cached
 * across runs) and after it; then the patches are reverted and the touched files get their
 * modification times back, so the tree is exactly as before, also on failure or Ctrl-C.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync } from "node:fs";
import { dirname, join } from "node:path";
import { createAtomic, writeFileAtomic } from "../util/atomic-write.js";
import type { Progress } from "../util/progress.js";
import { checkStop } from "./interrupt.js";
import { type KbuildObject, kernelObjects, objectsDependingOn } from "./kbuild-tree.js";
import { compileObject, installMacros, savedCommand, sectionCommand } from "./object-compile.js";
import { applyPatches, revertPatches, type SourcePatch, snapshotMtimes } from "./patch-file.js";
import { TreeLock } from "./tree-lock.js";

export interface ObjectPair extends KbuildObject {
  orig: string;
  patched: string;
}

export interface PatchedBuild {
  /** Objects whose bytes changed, with paths to both versions. */
  changed: ObjectPair[];
  /** Objects recompiled whose bytes did not change. */
  unchanged: KbuildObject[];
  /** Touched .c files no kernel object is built from (e.g. a file not in this config). */
  unused: string[];
}

export interface BuildTree {
  /** Kernel source (patched and restored in place). */
  srcDir: string;
  /** kbuild output tree of the running kernel (read only). */
  buildDir: string;
  /** Where original objects are cached. */
  cacheDir: string;
}

/** Run `fn` over `items`, at most `jobs` at a time. */
async function pool<T>(items: readonly T[], jobs: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      checkStop();
      await fn(items[next++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
}

/** The original object, compiled before any patch is applied, cached by command and source. */
async function originalObject(tree: BuildTree, o: KbuildObject): Promise<string> {
  const out = join(tree.cacheDir, o.path);
  const key = createHash("sha256")
    .update(sectionCommand(savedCommand(tree.buildDir, o.path), o.path, "OUT"))
    .update(readFileSync(o.source))
    .digest("hex");
  const keyFile = `${out}.key`;
  if (existsSync(out) && existsSync(keyFile) && readFileSync(keyFile, "utf8") === key) return out;
  await createAtomic(out, (tmp) => compileObject(tree.buildDir, o.path, tmp));
  writeFileAtomic(keyFile, key);
  return out;
}

export async function buildPatchedObjects(
  tree: BuildTree,
  patches: readonly SourcePatch[],
  workDir: string,
  progress: Progress,
  jobs: number,
): Promise<PatchedBuild> {
  installMacros();
  progress.begin("find objects", "reading kbuild records");
  const index = kernelObjects(tree.buildDir);
  const touched = [...new Set(patches.flatMap((p) => p.files))];
  const candidates = objectsDependingOn(
    index,
    touched.map((f) => join(tree.srcDir, f)),
    tree.buildDir,
  );
  progress.end(`${candidates.length} of ${index.length} objects depend on ${touched.join(" ")}`);

  progress.begin("original build", `${candidates.length} objects`);
  let n = 0;
  const origs = new Map<string, string>();
  await pool(candidates, jobs, async (o) => {
    origs.set(o.path, await originalObject(tree, o));
    progress.update(`${++n}/${candidates.length} ${o.path}`, n / candidates.length);
  });
  progress.end(`${candidates.length} objects (cached ones reused)`);

  const lock = await TreeLock.acquire(tree.srcDir, undefined, (pid) =>
    progress.note(`waiting for another kpatch-build (pid ${pid}) to finish with ${tree.srcDir}`),
  );
  const mtimes = snapshotMtimes(tree.srcDir, touched);
  try {
    progress.begin("apply patches", `${patches.length} patches`);
    lock.record(patches);
    await applyPatches(tree.srcDir, patches);
    progress.end(`${patches.length} applied`);
  } catch (e) {
    lock.release();
    throw e;
  }
  try {
    progress.begin("patched build", `${candidates.length} objects`);
    n = 0;
    await pool(candidates, jobs, async (o) => {
      await compileObject(tree.buildDir, o.path, join(workDir, "patched", o.path));
      progress.update(`${++n}/${candidates.length} ${o.path}`, n / candidates.length);
    });
    progress.end(`${n} compiled`);
    checkStop();
  } finally {
    progress.begin("revert patches");
    await revertPatches(tree.srcDir, patches);
    for (const [f, t] of mtimes)
      if (t && existsSync(join(tree.srcDir, f))) utimesSync(join(tree.srcDir, f), t, t);
    lock.release();
    progress.end("source tree restored");
  }

  const changed: ObjectPair[] = [];
  const unchanged: KbuildObject[] = [];
  for (const o of candidates) {
    const orig = join(workDir, "orig", o.path);
    mkdirSync(dirname(orig), { recursive: true });
    copyFileSync(origs.get(o.path)!, orig);
    const patched = join(workDir, "patched", o.path);
    if (readFileSync(orig).equals(readFileSync(patched))) unchanged.push(o);
    else changed.push({ ...o, orig, patched });
  }
  const used = new Set(candidates.map((o) => o.source));
  const unused = touched.filter((f) => f.endsWith(".c") && !used.has(join(tree.srcDir, f)));
  return { changed, unchanged, unused };
}
