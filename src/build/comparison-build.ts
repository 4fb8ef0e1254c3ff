/**
 * The comparison build: the lab's (or a given) kernel source and config compiled again with
 * -ffunction-sections -fdata-sections, one function and one data object per section, so the
 * differ can compare objects function by function. It is never booted; it is built once per
 * source version, config and compiler, and kept.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheRoot } from "../lab/paths.js";
import type { Lab } from "../lab/setup.js";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
import type { Progress } from "../util/progress.js";

/** The repository's include/kpatch-ts (kpatch-macros.h for patch authors). */
const MACROS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "include", "kpatch-ts");

/**
 * Where builds find kpatch-macros.h. It sits in the cache (a stable path): the path is part of
 * KCFLAGS, and kbuild rebuilds every object when its command line changes.
 */
export function macrosIncludeDir(): string {
  return join(cacheRoot(), "include");
}

/** KCFLAGS of every make in the comparison tree: the same each time, or kbuild rebuilds all. */
export function comparisonKcflags(): string {
  return `-ffunction-sections -fdata-sections -I${macrosIncludeDir()}`;
}

/** Put the current kpatch-macros.h where the builds look for it. */
export function installMacros(): void {
  mkdirSync(macrosIncludeDir(), { recursive: true });
  const from = join(MACROS_DIR, "kpatch-macros.h");
  const to = join(macrosIncludeDir(), "kpatch-macros.h");
  if (!existsSync(to) || readFileSync(to, "utf8") !== readFileSync(from, "utf8")) copyFileSync(from, to);
}

export interface ComparisonTree {
  srcDir: string;
  dir: string;
}

export function comparisonTreeDir(lab: Pick<Lab, "series" | "key">): string {
  return join(cacheRoot(), "build", `${lab.series}-${lab.key}`, "orig");
}

/** make arguments for the comparison tree; every make in that tree must use the same KCFLAGS. */
export function comparisonMake(tree: ComparisonTree, jobs: number, targets: readonly string[]): string[] {
  return ["-C", tree.srcDir, `O=${tree.dir}`, `-j${jobs}`, `KCFLAGS=${comparisonKcflags()}`, ...targets];
}

export const KBUILD_ENV = { KBUILD_BUILD_USER: "kpatch-ts", KBUILD_BUILD_HOST: "lab" };

/** Build (or find) the comparison tree of a lab. */
export async function ensureComparisonBuild(
  lab: Pick<Lab, "series" | "key" | "srcDir" | "buildDir">,
  progress: Progress,
  jobs = cpus().length,
): Promise<ComparisonTree> {
  const tree = { srcDir: lab.srcDir, dir: comparisonTreeDir(lab) };
  const stamp = join(tree.dir, ".kpatch-ts-complete");
  installMacros();
  progress.begin("original build", `${tree.dir}`);
  if (existsSync(stamp)) {
    progress.end("cached");
    return tree;
  }
  mkdirSync(tree.dir, { recursive: true });
  const labConfig = join(lab.buildDir, ".config");
  const config = join(tree.dir, ".config");
  if (!existsSync(config) || readFileSync(config, "utf8") !== readFileSync(labConfig, "utf8")) {
    copyFileSync(labConfig, config);
  }
  let compiled = 0;
  const expected = readExpected(lab.buildDir);
  const r = await exec("make", comparisonMake(tree, jobs, ["vmlinux", "modules"]), {
    env: { ...process.env, ...KBUILD_ENV },
    onLine: (line) => {
      const m = /^\s+(CC|AS)( \[M\])?\s+(\S+)/.exec(line);
      if (m)
        progress.update(
          `${++compiled}${expected ? `/${expected}` : ""} objects, ${m[3]}`,
          expected && compiled / expected,
        );
    },
  });
  if (r.code !== 0) {
    const errs = `${r.stdout}\n${r.stderr}`
      .split("\n")
      .filter((l) => /error/i.test(l))
      .slice(-20)
      .join("\n");
    throw new KpatchError("BUILD_FAILED", `Cannot build the original (comparison) tree:\n${errs}`, {
      file: tree.dir,
    });
  }
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  progress.end(`${compiled} objects compiled`);
  return tree;
}

function readExpected(labBuild: string): number | undefined {
  const ready = join(labBuild, "..", "ready.json");
  if (!existsSync(ready)) return undefined;
  return (JSON.parse(readFileSync(ready, "utf8")) as { objects?: number }).objects;
}
