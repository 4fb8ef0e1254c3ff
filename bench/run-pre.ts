/**
 * bench/run-pre: what the run-pre check costs as a share of a whole kpatch-build run (goal:
 * under 5%). Each run is a fresh `kpatch-build --json` process, as a user runs it (originals
 * cached), whose per-phase timings give the check's own time. Lab patches, and a stock Debian
 * 6.12 patch when that kernel's tree is prepared (kpatch-build --kernel-release).
 *
 *   node dist/bench/run-pre.js [RUNS]
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { findDebianPackage } from "../src/debian/debian-package.js";

const run = promisify(execFile);
const runs = Number(process.argv[2] ?? 3);
const root = join(import.meta.dirname, "..", "..");
const cli = join(root, "dist", "src", "cli", "kpatch-build.js");
const out = mkdtempSync(join(tmpdir(), "bench-run-pre-"));

interface Case {
  name: string;
  args: string[];
}

const cases: Case[] = ["cmdline", "meminfo-inline", "two-files"].map((p) => ({
  name: `lab 6.12: ${p}.patch`,
  args: [join(root, "test", "fixtures", "patches", "6.12", `${p}.patch`)],
}));
if (findDebianPackage("linux-image-6.12.117+deb12-amd64-unsigned", "6.12.117-1~deb12u1")) {
  cases.push({
    name: "Debian 6.12.117: loadavg-header.patch",
    args: [
      "--kernel-release",
      "6.12.117+deb12-amd64",
      join(root, "test", "fixtures", "patches", "distro-6.12", "loadavg-header.patch"),
    ],
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `run-pre check cost in kpatch-build, ${runs} runs per patch (fresh process each, originals cached)`,
);
console.log(
  `${"patch".padEnd(40)} ${"functions".padStart(9)} ${"check s".padStart(8)} ${"total s".padStart(8)} share`,
);
let worst = 0;
for (const c of cases) {
  const checks: number[] = [];
  const totals: number[] = [];
  let functions = 0;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const r = await run("node", [cli, "--json", "-o", out, ...c.args], { maxBuffer: 64 << 20 });
    totals.push((performance.now() - start) / 1000);
    const result = JSON.parse(r.stdout) as {
      timings: Record<string, number>;
      runPre: { functions: unknown[] };
    };
    checks.push((result.timings["run-pre check"] ?? 0) / 1000);
    functions = result.runPre.functions.length;
  }
  const share = median(checks) / median(totals);
  worst = Math.max(worst, share);
  console.log(
    `${c.name.padEnd(40)} ${String(functions).padStart(9)} ${median(checks).toFixed(2).padStart(8)} ${median(totals).toFixed(2).padStart(8)} ${(100 * share).toFixed(1).padStart(4)}%`,
  );
}
console.log(`worst share ${(100 * worst).toFixed(1)}% (goal: under 5%)`);
rmSync(out, { recursive: true, force: true });
