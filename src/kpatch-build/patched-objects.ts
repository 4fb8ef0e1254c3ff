/**
 * Build the two versions of every object a patch changes, without building the kernel: the
 * objects come from the target's build tree (the one that built the running kernel), whose
 * kbuild records say which objects depend on which files and how each was compiled. All of it
 * runs under the tree lock: each candidate is compiled with -ffunction-sections -fdata-sections
 * before the patch (cached across runs) and after it; the files the patches touch are saved in
 * the lock before the first is applied and put back after, so the tree is exactly as before,
 * also on failure, Ctrl-C, or (by the next run) after the process was killed.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { createAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import type { Progress } from "../util/progress.js";
import { throwIfAborted } from "./interrupt.js";
import { kbuildIndex } from "./kbuild-index.js";
import { cmdFile, type KbuildObject, objectsDependingOn, readKbuildCmd } from "./kbuild-tree.js";
import type { KernelObjects, KernelTree } from "./kernel-tree.js";
import { ObjectCache } from "./object-cache.js";
import { compileObject, installMacros, macrosIncludeDir, sectionCommand } from "./object-compile.js";
import { applyPatches, describeHunk, type SourcePatch } from "./patch-file.js";
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
  /** How to find the objects the touched files reach (default: the build tree's records). */
  findObjects?: KernelTree["findObjects"];
  /** How its compiles run (default: here). */
  run?: KernelTree["run"];
}

/** The build tree of a kernel tree: its original objects cached under the tree's cache key. */
export function buildTreeOf(kernel: KernelTree): BuildTree {
  return {
    srcDir: kernel.srcDir,
    buildDir: kernel.buildDir,
    cacheDir: cachePath("objects", kernel.cacheKey),
    ...(kernel.findObjects ? { findObjects: kernel.findObjects } : {}),
    ...(kernel.run ? { run: kernel.run } : {}),
  };
}

export interface PatchedBuildOptions {
  tree: BuildTree;
  patches: readonly SourcePatch[];
  workDir: string;
  progress: Progress;
  jobs: number;
  signal?: AbortSignal;
  /** Accept hunks placed by offset or fuzz (each is warned about). */
  allowFuzz?: boolean;
  /** How long to wait for another run holding the tree (default 10 minutes). */
  lockTimeoutMs?: number;
}

/**
 * The objects whose kbuild records in the build tree say they depend on a touched file (the
 * records' index, kept while the tree's records stay as they were: kbuild-index.ts).
 */
function recordedObjects(tree: BuildTree, touched: readonly string[], progress: Progress): KernelObjects {
  progress.begin("find objects", "reading kbuild records");
  const index = kbuildIndex(tree.buildDir);
  const candidates = index.dependingOn(touched.map((f) => join(tree.srcDir, f)));
  return { candidates, total: index.objects.length };
}

/**
 * Run `fn` over `items`, at most `jobs` at a time. After a failure (or an abort) no new item
 * starts, and the call returns only when the running ones are done: nothing may still be
 * compiling when the caller restores the tree and lets the lock go.
 */
async function pool<T>(
  items: readonly T[],
  jobs: number,
  signal: AbortSignal | undefined,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async () => {
    while (failures.length === 0 && next < items.length) {
      try {
        throwIfAborted(signal);
        await fn(items[next++]!);
      } catch (e) {
        failures.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  if (failures.length) throw failures[0];
}

/** Content hashes of files, each read once per run; "-" for a file that does not exist. */
class FileHashes {
  private readonly known = new Map<string, string>();
  of(path: string): string {
    let h = this.known.get(path);
    if (h === undefined) {
      h = existsSync(path) ? createHash("sha256").update(readFileSync(path)).digest("hex") : "-";
      this.known.set(path, h);
    }
    return h;
  }
}

/**
 * The original object, compiled before any patch is applied, written to `dest` (the run's own
 * copy). Cached (object-cache.ts) under a key covering the trees (resolved), the command, and
 * the content of the source and of every file kbuild recorded it depends on, so a rebuilt
 * kernel's changed headers or another tree never reuse a wrong object.
 */
async function originalObject(
  tree: BuildTree,
  o: KbuildObject,
  run: { hashes: FileHashes; cache: ObjectCache; signal: AbortSignal | undefined },
  dest: string,
): Promise<void> {
  const record = readKbuildCmd(tree.buildDir, o.path);
  const deps = record.deps.map((d) => resolve(tree.buildDir, d));
  const hash = createHash("sha256").update(`${tree.srcDir}\n${tree.buildDir}\n`);
  hash.update(sectionCommand(record.command, o.path, "OUT"));
  for (const f of [o.source, join(macrosIncludeDir(), "kpatch-macros.h"), ...deps])
    hash.update(`\n${f} ${run.hashes.of(f)}`);
  const key = hash.digest("hex").slice(0, 32);
  if (run.cache.take(o.path, key, dest)) return;
  const { signal } = run;
  await createAtomic(dest, (tmp) => compileObject(tree.buildDir, o.path, tmp, { signal, run: tree.run }));
  run.cache.put(o.path, key, dest);
}

/**
 * The original build of the objects compiled from (or including) `files` (relative to the source
 * tree), under the tree lock, for a run-pre check of source files without a patch.
 */
export async function buildOriginalObjects(
  options: Omit<PatchedBuildOptions, "patches"> & { files: readonly string[] },
): Promise<(KbuildObject & { orig: string })[]> {
  const { progress, jobs, signal, files } = options;
  const tree: BuildTree = {
    srcDir: realpathSync(options.tree.srcDir),
    buildDir: realpathSync(options.tree.buildDir),
    cacheDir: options.tree.cacheDir,
    ...(options.tree.run ? { run: options.tree.run } : {}),
  };
  installMacros();
  const lock = await TreeLock.acquire(tree.srcDir, {
    ...(signal ? { signal } : {}),
    onWait: (pid) =>
      progress.note(`waiting for another kpatch-build (pid ${pid}) to finish with ${tree.srcDir}`),
    onNote: (m) => progress.note(m),
  });
  try {
    const found = options.tree.findObjects
      ? await options.tree.findObjects(files, progress)
      : recordedObjects(tree, files, progress);
    const objects = found.candidates;
    progress.end(`${objects.length} of ${found.total} objects depend on ${files.join(" ")}`);
    progress.begin("original build", `${objects.length} objects`);
    const run = {
      hashes: new FileHashes(),
      cache: new ObjectCache(tree.cacheDir, (m) => progress.note(m)),
      signal,
    };
    const out: (KbuildObject & { orig: string })[] = [];
    await pool(objects, jobs, signal, async (o) => {
      const orig = join(options.workDir, "orig", o.path);
      await originalObject(tree, o, run, orig);
      out.push({ ...o, orig });
    });
    progress.end(`${objects.length} objects (cached ones reused)`);
    return out.sort((a, b) => a.path.localeCompare(b.path));
  } finally {
    lock.release();
  }
}

export async function buildPatchedObjects(options: PatchedBuildOptions): Promise<PatchedBuild> {
  const { patches, workDir, progress, jobs, signal } = options;
  // kbuild records resolved paths: a tree given through a symlink must be compared resolved.
  const tree: BuildTree = {
    srcDir: realpathSync(options.tree.srcDir),
    buildDir: realpathSync(options.tree.buildDir),
    cacheDir: options.tree.cacheDir,
    ...(options.tree.run ? { run: options.tree.run } : {}),
  };
  installMacros();
  const touched = [...new Set(patches.flatMap((p) => p.files))];

  // The lock comes first: originals compiled from a tree another run has patched are wrong
  // (and so would be the kbuild records a Debian kernel's tree makes while finding objects).
  const lock = await TreeLock.acquire(tree.srcDir, {
    ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}),
    ...(signal ? { signal } : {}),
    onWait: (pid) =>
      progress.note(`waiting for another kpatch-build (pid ${pid}) to finish with ${tree.srcDir}`),
    onNote: (m) => progress.note(m),
  });
  let n = 0;
  let candidates: KbuildObject[] = [];
  try {
    const found = options.tree.findObjects
      ? await options.tree.findObjects(touched, progress)
      : recordedObjects(tree, touched, progress);
    candidates = found.candidates;
    progress.end(`${candidates.length} of ${found.total} objects depend on ${touched.join(" ")}`);
    progress.begin("original build", `${candidates.length} objects`);
    const run = {
      hashes: new FileHashes(),
      cache: new ObjectCache(tree.cacheDir, (m) => progress.note(m)),
      signal,
    };
    await pool(candidates, jobs, signal, async (o) => {
      await originalObject(tree, o, run, join(workDir, "orig", o.path));
      progress.update(`${++n}/${candidates.length} ${o.path}`, n / candidates.length);
    });
    progress.end(`${candidates.length} objects (cached ones reused)`);

    progress.begin("apply patches", `${patches.length} patches`);
    lock.saveFiles(touched);
    const inexact = await applyPatches(tree.srcDir, patches, {
      ...(options.allowFuzz ? { allowFuzz: true } : {}),
      ...(signal ? { signal } : {}),
      onApplied: () => lock.recordLeftState(),
    });
    progress.end(`${patches.length} applied`);
    for (const h of inexact) {
      progress.note(`WARNING: ${describeHunk(h)}: check that the live patch changes the lines you meant`);
    }

    progress.begin("patched build", `${candidates.length} objects`);
    n = 0;
    await pool(candidates, jobs, signal, async (o) => {
      await compileObject(tree.buildDir, o.path, join(workDir, "patched", o.path), { signal, run: tree.run });
      progress.update(`${++n}/${candidates.length} ${o.path}`, n / candidates.length);
    });
    progress.end(`${n} compiled`);
    throwIfAborted(signal);
  } finally {
    progress.begin("restore tree");
    lock.release();
    progress.end("source tree restored");
  }

  const changed: ObjectPair[] = [];
  const unchanged: KbuildObject[] = [];
  for (const o of candidates) {
    const orig = join(workDir, "orig", o.path);
    const patched = join(workDir, "patched", o.path);
    if (readFileSync(orig).equals(readFileSync(patched))) unchanged.push(o);
    else changed.push({ ...o, orig, patched });
  }
  return { changed, unchanged, unused: unreachedSources(tree, candidates, touched) };
}

/**
 * The touched .c files no candidate is compiled from nor, by its kbuild record, depends on
 * (a .c #included by another: kernel/sched/rt.c in build_policy.o is reached).
 */
function unreachedSources(tree: BuildTree, candidates: readonly KbuildObject[], touched: readonly string[]) {
  const record = (path: string) =>
    existsSync(cmdFile(tree.buildDir, path)) ? readFileSync(cmdFile(tree.buildDir, path), "utf8") : "";
  const records = candidates.map((obj) => ({ obj, cmd: record(obj.path) }));
  return touched.filter(
    (f) =>
      f.endsWith(".c") && objectsDependingOn(records, [join(tree.srcDir, f)], tree.buildDir).length === 0,
  );
}
