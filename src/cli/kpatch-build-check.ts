/**
 * kpatch-build --check-only: the run-pre check alone. Given patches, it builds and diffs them as
 * kpatch-build does and checks what they change; given source files (paths in the kernel tree
 * ending in .c, .h or .S), it checks every function of every object built from them. Nothing is
 * built. Exit 0 when everything matches, 4 on a mismatch (the report names each).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { KernelTree } from "../kpatch-build/kernel-tree.js";
import { kpatchBuild } from "../kpatch-build/kpatch-build.js";
import { buildOriginalObjects } from "../kpatch-build/patched-objects.js";
import { runPreStep } from "../kpatch-build/run-pre-step.js";
import { RunPreError, type RunPreReport } from "../run-pre/run-pre-check.js";
import { formatRunPre } from "../run-pre/run-pre-format.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";
import { EXIT, UsageError } from "./main.js";

/** A kernel source file (relative to the tree), as --check-only takes instead of patches. */
export function isSourceFile(input: string): boolean {
  return /\.(c|h|S)$/.test(input);
}

/** --image FILE: the kernel image the check reads code from. */
export function withImage(tree: KernelTree, image: string | undefined): KernelTree {
  if (!image) return tree;
  const path = resolve(image);
  if (!existsSync(path)) throw new KpatchError("KIMAGE_NOT_FOUND", `Cannot read ${path}: no such file`);
  return { ...tree, image: path };
}

export async function checkOnly(options: {
  tree: KernelTree;
  inputs: string[];
  json: boolean;
  jobs: number;
  progress: Progress;
  signal: AbortSignal;
}): Promise<number> {
  const { tree, inputs, progress, signal } = options;
  const files = inputs.filter(isSourceFile);
  if (files.length && files.length !== inputs.length)
    throw new UsageError("give either patches or source files");
  let report: RunPreReport;
  try {
    if (files.length) {
      // The originals' own copies (the cache may be pruned by another run meanwhile).
      const workDir = mkdtempSync(join(tmpdir(), "kpatch-build-check-"));
      try {
        const objects = await buildOriginalObjects({
          tree: {
            srcDir: tree.srcDir,
            buildDir: tree.buildDir,
            cacheDir: cachePath("objects", tree.cacheKey),
            ...(tree.findObjects ? { findObjects: tree.findObjects } : {}),
          },
          files,
          workDir,
          progress,
          jobs: options.jobs,
          signal,
        });
        if (objects.length === 0) {
          throw new KpatchError("NO_CHANGES", `No object of this kernel is built from ${files.join(" ")}`);
        }
        report = await runPreStep(tree, objects, progress);
      } finally {
        rmSync(workDir, { recursive: true, force: true });
      }
    } else {
      const result = await kpatchBuild({
        tree,
        patches: inputs,
        outDir: ".",
        replace: true,
        jobs: options.jobs,
        skipCleanup: false,
        progress,
        signal,
        checkOnly: true,
      });
      report = result.runPre;
    }
  } catch (e) {
    if (!(e instanceof RunPreError) || !options.json) throw e;
    report = e.report;
  }
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${formatRunPre(report, { allowed: true })}\n`);
  return report.mismatched ? EXIT.runPre : EXIT.ok;
}
