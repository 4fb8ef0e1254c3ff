/**
 * kpatch-build --check-only: the run-pre check alone, beside the pipeline (kpatch-build.ts).
 * Given patches, it builds and diffs them as kpatch-build does and checks what they change;
 * given source files (paths in the kernel tree ending in .c, .h or .S), it checks every function
 * of every object built from them. No module is built. A mismatch throws RunPreError (its
 * report attached), as the pipeline does.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { RunPreReport } from "../run-pre/run-pre-check.js";
import { KpatchError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";
import type { KernelTree } from "./kernel-tree.js";
import { kpatchBuild } from "./kpatch-build.js";
import { buildOriginalObjects, buildTreeOf } from "./patched-objects.js";
import { runPreStep } from "./run-pre-step.js";

/** A kernel source file (relative to the tree), as --check-only takes instead of patches. */
export function isSourceFile(input: string): boolean {
  return /\.(c|h|S)$/.test(input);
}

/** The tree with `image` (--image FILE) as the kernel image the check reads code from. */
export function withImage(tree: KernelTree, image: string | undefined): KernelTree {
  if (!image) return tree;
  const path = resolve(image);
  if (!existsSync(path)) throw new KpatchError("KIMAGE_NOT_FOUND", `Cannot read ${path}: no such file`);
  return { ...tree, image: path };
}

/** The run-pre check of what `inputs` (all patches, or all source files) reach. */
export async function checkOnly(options: {
  tree: KernelTree;
  inputs: string[];
  jobs: number;
  progress: Progress;
  signal: AbortSignal;
}): Promise<RunPreReport> {
  const { tree, inputs, progress, signal, jobs } = options;
  if (!inputs.every(isSourceFile)) {
    const result = await kpatchBuild({
      tree,
      patches: inputs,
      outDir: ".",
      replace: true,
      jobs,
      skipCleanup: false,
      progress,
      signal,
      checkOnly: true,
    });
    return result.runPre;
  }
  // The originals' own copies (the cache may be pruned by another run meanwhile).
  const workDir = mkdtempSync(join(tmpdir(), "kpatch-build-check-"));
  try {
    const objects = await buildOriginalObjects({
      tree: buildTreeOf(tree),
      files: inputs,
      workDir,
      progress,
      jobs,
      signal,
    });
    if (objects.length === 0) {
      throw new KpatchError("NO_CHANGES", `No object of this kernel is built from ${inputs.join(" ")}`);
    }
    return await runPreStep(tree, objects, progress);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
