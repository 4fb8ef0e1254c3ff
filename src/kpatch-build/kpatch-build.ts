/**
 * kpatch-build, the pipeline: check the tree, make sure the comparison build exists, build the
 * objects the patches change (tree restored after), diff each changed object, generate and
 * build the livepatch module. Phases report through Progress; errors are KpatchErrors whose
 * codes the CLI maps to exit statuses.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import type { DiffReport } from "../diff/index.js";
import { buildModule, type DiffOutput, type ModuleSigning } from "../klp/build-module.js";
import type { PatchedTarget } from "../klp/module-source.js";
import type { RunPreReport } from "../run-pre/run-pre-check.js";
import { KpatchError } from "../util/errors.js";
import { MODULE_NAME_MAX } from "../util/module-name.js";
import type { Progress } from "../util/progress.js";
import { checkTree } from "./check-tree.js";
import { throwIfAborted } from "./interrupt.js";
import type { KernelTree } from "./kernel-tree.js";
import { readPatch } from "./patch-file.js";
import { buildPatchedObjects, buildTreeOf } from "./patched-objects.js";
import { runPreRecord, runPreStep } from "./run-pre-step.js";
import { TreeDiffer } from "./tree-differ.js";

export interface KpatchBuildOptions {
  tree: KernelTree;
  patches: string[];
  name?: string;
  outDir: string;
  replace: boolean;
  jobs: number;
  skipCleanup: boolean;
  progress: Progress;
  /** Sign the module with this key and certificate (scripts/sign-file of the kernel's tree). */
  sign?: ModuleSigning;
  /** Called when the work directory exists, so a signal handler can name it. */
  onWorkDir?: (dir: string) => void;
  /** Stops the build (Ctrl-C): INTERRUPTED, after the source tree is restored. */
  signal?: AbortSignal;
  /** Accept hunks that apply only by offset or fuzz, with a warning for each. */
  allowFuzz?: boolean;
  /** Build even when the run-pre check finds the original build is not the target's code (experts). */
  skipRunPre?: boolean;
  /** Stop after the run-pre check: build nothing (the result's module is ""). */
  checkOnly?: boolean;
}

export interface KpatchBuildResult {
  /** The module built ("" with checkOnly). */
  module: string;
  name: string;
  targets: PatchedTarget[];
  objects: { path: string; target: string; report: DiffReport }[];
  /** The run-pre check: each checked function matched, matched with allowed differences, or not. */
  runPre: RunPreReport;
  timings: Record<string, number>;
  workDir?: string;
}

/**
 * NO_CHANGES when the touched files reach no object at all (a target whose lookup cannot tell,
 * a Debian kernel's index, throws before that: there it means "not built by this config").
 */
export const NO_OBJECT_REACHED = "The patches reach no object of this kernel: nothing to patch";

/** kpatch's naming: livepatch-<patch file name>, characters the kernel allows, at most 55. */
function moduleName(patches: readonly string[], name?: string): string {
  const base = name ?? `livepatch-${basename(patches[0] ?? "patch").replace(/\.(patch|diff)$/, "")}`;
  const clean = base.replace(/[^A-Za-z0-9_-]/g, "-");
  if (clean.length > MODULE_NAME_MAX) {
    throw new KpatchError(
      "NAME_TOO_LONG",
      `Cannot name the module '${clean}': a module name has at most ${MODULE_NAME_MAX} characters (use -n)`,
    );
  }
  return clean;
}

/** kbuild cannot build a module (M=) in a directory whose path has spaces or make/shell characters. */
const KBUILD_SAFE_PATH = /^[A-Za-z0-9_./+,@~-]+$/;

/** Where the work directory goes: $TMPDIR, unless kbuild could not build the module there. */
function workParent(progress: Progress): string {
  const dir = tmpdir();
  if (KBUILD_SAFE_PATH.test(dir)) return dir;
  progress.note(`note: kbuild cannot build in '${dir}' (TMPDIR): working in /tmp`);
  return "/tmp";
}

export async function kpatchBuild(options: KpatchBuildOptions): Promise<KpatchBuildResult> {
  const { tree: kernel, progress } = options;
  const patches = options.patches.map((p) => readPatch(resolve(p)));
  const name = moduleName(options.patches, options.name);
  progress.begin("check", `${kernel.buildDir}/.config`);
  await checkTree(join(kernel.buildDir, ".config"), kernel.run);
  progress.end("livepatch, ftrace, kallsyms, compiler: ok");
  const tree = buildTreeOf(kernel);
  const workDir = mkdtempSync(join(workParent(progress), `kpatch-build-${name}-`));
  options.onWorkDir?.(workDir);
  try {
    const built = await buildPatchedObjects({
      tree,
      patches,
      workDir,
      progress,
      jobs: options.jobs,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.allowFuzz ? { allowFuzz: true } : {}),
    });
    for (const f of built.unused) progress.note(`warning: ${f}: no object of this kernel is built from it`);
    if (built.changed.length === 0) {
      throw new KpatchError(
        "NO_CHANGES",
        built.unchanged.length === 0
          ? NO_OBJECT_REACHED
          : "The patches change no object of this kernel (each compiles to the same bytes): nothing to patch",
      );
    }
    progress.begin("diff", `${built.changed.length} objects`);
    const differ = new TreeDiffer(kernel);
    const outputs: DiffOutput[] = [];
    const objects: KpatchBuildResult["objects"] = [];
    for (const pair of built.changed) {
      throwIfAborted(options.signal);
      progress.update(pair.path);
      const v = await differ.diff(pair);
      objects.push({ path: pair.path, target: pair.target, report: v.report });
      for (const c of v.report.copied) progress.note(`note: ${pair.path}: copied ${c.name}: ${c.why}`);
      for (const n of v.report.notes) progress.note(`note: ${pair.path}: ${n}`);
      if (v.output && v.funcs.length)
        outputs.push({ object: v.output, target: pair.target, funcs: v.funcs, notes: v.report.notes });
    }
    progress.end(`${outputs.reduce((n, o) => n + o.funcs.length, 0)} functions changed`);
    if (outputs.length === 0) {
      throw new KpatchError("NO_CHANGES", "The patches change no function: nothing to patch");
    }
    throwIfAborted(options.signal);
    const checked = built.changed.map((p, i) => ({ ...p, report: objects[i]!.report }));
    const runPre = await runPreStep(kernel, checked, progress, { override: options.skipRunPre ?? false });
    if (options.checkOnly)
      return { module: "", name, targets: [], objects, runPre, timings: { ...progress.timings } };
    if (!existsSync(options.outDir)) mkdirSync(options.outDir, { recursive: true });
    const out = join(options.outDir, `${name}.ko`);
    const record = runPreRecord(checked);
    const mod = await buildModule({
      name,
      runPreRecord: record.data,
      outputs,
      kernelBuildDir: kernel.buildDir,
      workDir,
      outFile: out,
      replace: options.replace,
      jobs: options.jobs,
      progress,
      ...(kernel.makeArgs ? { makeArgs: kernel.makeArgs } : {}),
      ...(kernel.run ? { run: kernel.run } : {}),
      ...(options.sign ? { sign: options.sign } : {}),
    }).catch((e: unknown) => {
      throwIfAborted(options.signal); // Ctrl-C reached make too: an interruption, not a failure
      throw e;
    });
    return {
      module: mod.ko,
      name,
      targets: mod.targets,
      objects,
      runPre,
      timings: { ...progress.timings },
      ...(options.skipCleanup ? { workDir } : {}),
    };
  } finally {
    if (!options.skipCleanup) rmSync(workDir, { recursive: true, force: true });
  }
}
