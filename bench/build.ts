/**
 * bench/build: wall time of kpatch-build for a one-function patch (fs/proc/cmdline.c) with the
 * original (comparison) build cached, split by phase, over a few runs; printed against the
 * goal of 60 s on a 2-core machine, and against a no-op `make` of the comparison tree (what
 * merely asking kbuild "is anything to do?" costs) measured in the same process.
 *
 *   node dist/bench/build.js [RUNS]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { comparisonMake, ensureComparisonBuild } from "../src/build/comparison-build.js";
import { kpatchBuild } from "../src/build/kpatch-build.js";
import { labDiffStep } from "../src/build/lab-differ.js";
import { DEFAULT_SERIES } from "../src/lab/paths.js";
import { requireLab } from "../src/lab/setup.js";
import { execCheck } from "../src/util/exec.js";
import { Progress } from "../src/util/progress.js";

const runs = Number(process.argv[2] ?? 3);
const lab = requireLab(DEFAULT_SERIES);
const patch = join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", lab.series, "cmdline.patch");
const out = mkdtempSync(join(tmpdir(), "bench-build-"));
const tree = await ensureComparisonBuild(lab, new Progress({ quiet: true }));

const t0 = performance.now();
await execCheck("make", comparisonMake(tree, 2, ["fs/proc/cmdline.o"]));
const noop = (performance.now() - t0) / 1000;

const totals: number[] = [];
const phases = new Map<string, number[]>();
for (let i = 0; i < runs; i++) {
  const progress = new Progress({ quiet: true });
  const start = performance.now();
  await kpatchBuild({
    lab,
    patches: [patch],
    outDir: out,
    replace: true,
    jobs: 2,
    skipCleanup: false,
    progress,
    diff: labDiffStep,
  });
  totals.push((performance.now() - start) / 1000);
  for (const [k, v] of Object.entries(progress.timings)) phases.set(k, [...(phases.get(k) ?? []), v / 1000]);
}
rmSync(out, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`kpatch-build, one-function patch (fs/proc/cmdline.c), original build cached, ${runs} runs`);
for (const [k, v] of phases) console.log(`  ${k.padEnd(16)} ${median(v).toFixed(2).padStart(7)} s`);
const m = median(totals);
console.log(`  ${"total".padEnd(16)} ${m.toFixed(2).padStart(7)} s  (median; min ${Math.min(...totals).toFixed(2)} s)`);
console.log(`goal 60 s: ${(m / 60).toFixed(2)}x of the goal`);
console.log(`no-op make of one object in the comparison tree: ${noop.toFixed(2)} s; kpatch-build = ${(m / noop).toFixed(1)}x that`);
