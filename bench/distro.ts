/**
 * bench/distro: kpatch-build for a stock Debian kernel (--kernel-release), a one-function patch
 * (fs/proc/cmdline.c), run as a user runs it (the CLI, a fresh process each time):
 *   cold: a fresh cache holding only the Debian packages (source unpack, tree preparation, object
 *         index, original build, everything else from scratch);
 *   warm: the same again with that cache.
 * Each split by phase, against the goals (cold < 3 min, warm < 10 s). The cold run's "find
 * objects" phase makes the kernel's object index every lookup uses, once per kernel version
 * (kbuild's dry run over the tree); the index is then loaded and its size printed, and
 * the full build kpatch-build avoids, estimated (not measured: hours here) from a timed sample of the
 * config's objects compiled by kbuild at -j2, scaled to every object the config builds.
 *
 *   node dist/bench/distro.js [KVER] [SAMPLE]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { buildRootRunner } from "../src/debian/build-root.js";
import { parseRelease } from "../src/debian/kernel-release.js";
import { fullObjectIndex } from "../src/kpatch-build/distro/distro-objects.js";
import { cachePath } from "../src/util/cache-dir.js";
import { exec, execCheck } from "../src/util/exec.js";
import { cpuSeconds } from "./cpu-time.js";

const kernelRelease = process.argv[2] ?? "6.12.117+deb12-amd64";
const sample = Number(process.argv[3] ?? 24);
const { series } = parseRelease(kernelRelease);
const root = join(import.meta.dirname, "..", "..");
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const patch = join(root, "test", "fixtures", "patches", series, "cmdline.patch");
const packages = cachePath("debian");
if (!existsSync(packages)) {
  console.log(
    `bench/distro: no Debian packages in ${packages}: run kpatch-build --kernel-release ${kernelRelease} once first`,
  );
  process.exit(0);
}

interface Run {
  total: number;
  /** CPU seconds of the kpatch-build process and everything it ran (gcc, make, ld). */
  cpu: number;
  timings: Record<string, number>;
}

function build(cache: string, out: string): Run {
  const cpu0 = cpuSeconds();
  const start = performance.now();
  const json = execFileSync("node", [cli, "--kernel-release", kernelRelease, "--json", "-o", out, patch], {
    env: { ...process.env, KPATCH_TS_CACHE: cache },
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 64 << 20,
  }).toString();
  const total = (performance.now() - start) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const { timings } = JSON.parse(json) as { timings: Record<string, number> };
  return { total, cpu, timings };
}

function print(label: string, run: Run, goal: number): void {
  console.log(
    `${label}: ${run.total.toFixed(1)} s wall, ${run.cpu.toFixed(1)} s CPU (goal ${goal} s on 2 cores: ${(run.total / goal).toFixed(2)}x; load ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} CPUs)`,
  );
  for (const [phase, ms] of Object.entries(run.timings)) {
    console.log(`  ${phase.padEnd(16)} ${(ms / 1000).toFixed(2).padStart(7)} s`);
  }
}

const cache = mkdtempSync(join(tmpdir(), "bench-distro-cache-"));
const out = mkdtempSync(join(tmpdir(), "bench-distro-out-"));
try {
  // Nothing cached but the packages (downloads are not what is measured).
  symlinkSync(packages, join(cache, "debian"));
  console.log(`kpatch-build --kernel-release ${kernelRelease}, one-function patch (fs/proc/cmdline.c)`);
  const cold = build(cache, out);
  print("cold (fresh cache, packages only)", cold, 180);
  const warm = build(cache, out);
  print("warm (same cache)", warm, 10);

  // A full build of this config, estimated from a sample of its objects compiled by kbuild.
  const distro = join(cache, "distro");
  const tree = execFileSync("ls", [distro]).toString().trim().split("\n")[0]!;
  const buildDir = join(distro, tree, "build");
  const ready = JSON.parse(readFileSync(join(distro, tree, "ready.json"), "utf8")) as {
    cc: string;
    versions: { source: string };
    buildRoot?: string | null;
  };
  // The tree's commands run where kpatch-build ran them: here, or in the kernel's build root.
  const run = ready.buildRoot ? buildRootRunner(ready.buildRoot) : exec;
  const srcDir = join(cache, "src", ready.versions.source, `linux-source-${series}`);
  const ti = performance.now();
  const { objects: index } = await fullObjectIndex({
    srcDir,
    buildDir,
    makeArgs: [`CC=${ready.cc}`, `KERNELRELEASE=${kernelRelease}`],
    run,
  });
  console.log(
    `object index (made by the cold run's find objects, once per kernel version): ${index.length} objects, loaded in ${((performance.now() - ti) / 1000).toFixed(1)} s`,
  );
  const step = Math.max(1, Math.floor(index.length / sample));
  const picked = index.filter((_, i) => i % step === 0).slice(0, sample);
  const t0 = performance.now();
  await execCheck(
    "make",
    [`CC=${ready.cc}`, `KERNELRELEASE=${kernelRelease}`, "-j2", ...picked.map((o) => o.path)],
    { cwd: buildDir, run },
  );
  const sampleS = (performance.now() - t0) / 1000;
  const estimate = (sampleS / picked.length) * index.length;
  console.log(
    `full build of this config (estimate): ${picked.length} of its ${index.length} objects took ${sampleS.toFixed(1)} s at -j2, so all of them about ${(estimate / 60).toFixed(0)} min at -j2 (compiles only: no link, BTF or modpost; the sample's make overhead included)`,
  );
  console.log(`cold kpatch-build is ${(estimate / cold.total).toFixed(0)}x faster than that estimate`);
} finally {
  rmSync(cache, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
}
