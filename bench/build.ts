/**
 * bench/build: wall time of kpatch-build for a one-function patch (fs/proc/cmdline.c) with the
 * original object cached, split by phase, over a few runs; printed against the goal of 60 s
 * on a 2-core machine, and as a ratio to compiling that one file with its kbuild command (the
 * least any tool that rebuilds the changed file must spend), measured in the same process.
 *
 *   node dist/bench/build.js [RUNS]
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kpatchBuild } from "../src/kpatch-build/kpatch-build.js";
import { compileObject } from "../src/kpatch-build/object-compile.js";
import { labTree } from "../src/lab/lab-tree.js";
import { Progress } from "../src/util/progress.js";
import { fixturePatch, lab } from "../test/helpers/kpatch-build-fixtures.js";

const runs = Number(process.argv[2] ?? 3);
const patch = fixturePatch("cmdline");
const out = mkdtempSync(join(tmpdir(), "bench-build-"));
const t0 = performance.now();
await compileObject(lab.buildDir, "fs/proc/cmdline.o", join(out, "cmdline.o"));
const gcc = (performance.now() - t0) / 1000;

const totals: number[] = [];
const phases = new Map<string, number[]>();
for (let i = 0; i < runs; i++) {
  const progress = new Progress({ quiet: true });
  const start = performance.now();
  await kpatchBuild({
    tree: labTree(lab),
    patches: [patch],
    outDir: out,
    replace: true,
    jobs: 2,
    skipCleanup: false,
    progress,
  });
  totals.push((performance.now() - start) / 1000);
  for (const [k, v] of Object.entries(progress.timings)) phases.set(k, [...(phases.get(k) ?? []), v / 1000]);
}
rmSync(out, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`kpatch-build, one-function patch (fs/proc/cmdline.c), original object cached, ${runs} runs`);
for (const [k, v] of phases) console.log(`  ${k.padEnd(16)} ${median(v).toFixed(2).padStart(7)} s`);
const m = median(totals);
// The first run of a process also reads the target's symbol table and measures entry sizes.
console.log(
  `  ${"total".padEnd(16)} ${m.toFixed(2).padStart(7)} s  (median of ${totals.map((t) => t.toFixed(2)).join(", ")} s)`,
);
console.log(`goal 60 s: ${(m / 60).toFixed(2)}x of the goal`);
console.log(
  `compiling fs/proc/cmdline.c once: ${gcc.toFixed(2)} s; kpatch-build = ${(m / gcc).toFixed(1)}x that`,
);
