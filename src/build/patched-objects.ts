/**
 * Build the objects a patch changes, in the comparison tree, without a full rebuild: apply
 * the patches, find every object whose recorded dependencies include a touched file, save
 * those objects, recompile them, keep the results, then revert the patches and put the saved
 * objects and source times back, so the tree is exactly as before (also on failure).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync } from "node:fs";
import { dirname, join } from "node:path";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
import type { Progress } from "../util/progress.js";
import { type ComparisonTree, comparisonMake, KBUILD_ENV } from "./comparison-build.js";
import { cmdFile, type KbuildObject, kernelObjects, objectsDependingOn } from "./kbuild-tree.js";
import { applyPatches, revertPatches, type SourcePatch, snapshotMtimes } from "./patch-file.js";

export interface ObjectPair extends KbuildObject {
  orig: string;
  patched: string;
}

export interface PatchedBuild {
  /** Objects whose bytes changed, with paths to both versions under the work directory. */
  changed: ObjectPair[];
  /** Objects recompiled whose bytes did not change. */
  unchanged: KbuildObject[];
  /** Touched files no kernel object depends on (e.g. a file not in this config). */
  unused: string[];
}

function copyKeepingTime(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  const st = statSync(from);
  utimesSync(to, st.atime, st.mtime);
}

export async function buildPatchedObjects(
  tree: ComparisonTree,
  patches: readonly SourcePatch[],
  workDir: string,
  progress: Progress,
  jobs: number,
): Promise<PatchedBuild> {
  progress.begin("find objects", "reading kbuild dependencies");
  const index = kernelObjects(tree.dir);
  const touched = [...new Set(patches.flatMap((p) => p.files))];
  progress.end(`${index.length} kernel objects indexed`);

  const mtimes = snapshotMtimes(tree.srcDir, touched);
  progress.begin("apply patches", touched.join(" "));
  await applyPatches(tree.srcDir, patches);
  progress.end(`${patches.length} applied`);
  const saved: KbuildObject[] = [];
  let candidates: KbuildObject[] = [];
  try {
    const abs = touched.map((f) => join(tree.srcDir, f));
    candidates = objectsDependingOn(index, abs, tree.dir);
    for (const o of candidates) {
      for (const f of [join(tree.dir, o.path), cmdFile(tree.dir, o.path)]) {
        copyKeepingTime(f, join(workDir, "saved", f.slice(tree.dir.length + 1)));
      }
      saved.push(o);
    }
    if (candidates.length > 0) {
      progress.begin("patched build", `${candidates.length} objects`);
      let n = 0;
      const r = await exec(
        "make",
        comparisonMake(
          tree,
          jobs,
          candidates.map((o) => o.path),
        ),
        {
          env: { ...process.env, ...KBUILD_ENV },
          onLine: (line) => {
            const m = /^\s+(CC|AS)( \[M\])?\s+(\S+)/.exec(line);
            if (m) progress.update(`${++n}/${candidates.length} ${m[3]}`, n / candidates.length);
          },
        },
      );
      if (r.code !== 0) {
        const errs = `${r.stdout}\n${r.stderr}`
          .split("\n")
          .filter((l) => /error|warning: /i.test(l))
          .slice(-20)
          .join("\n");
        throw new KpatchError("BUILD_FAILED", `The patched source does not compile:\n${errs}`);
      }
      for (const o of candidates) copyKeepingTime(join(tree.dir, o.path), join(workDir, "patched", o.path));
      progress.end(`${n} compiled`);
    }
  } finally {
    progress.begin("revert patches");
    await revertPatches(tree.srcDir, patches);
    for (const [f, t] of mtimes)
      if (t && existsSync(join(tree.srcDir, f))) utimesSync(join(tree.srcDir, f), t, t);
    for (const o of saved) {
      copyKeepingTime(join(workDir, "saved", o.path), join(tree.dir, o.path));
      const cmd = cmdFile(tree.dir, o.path);
      copyKeepingTime(join(workDir, "saved", cmd.slice(tree.dir.length + 1)), cmd);
    }
    progress.end("tree restored");
  }
  const changed: ObjectPair[] = [];
  const unchanged: KbuildObject[] = [];
  for (const o of candidates) {
    const orig = join(workDir, "saved", o.path);
    const patched = join(workDir, "patched", o.path);
    if (readFileSync(orig).equals(readFileSync(patched))) unchanged.push(o);
    else changed.push({ ...o, orig, patched });
  }
  const used = new Set(candidates.map((o) => o.source));
  const unused = touched.filter((f) => f.endsWith(".c") && !used.has(join(tree.srcDir, f)));
  return { changed, unchanged, unused };
}
