/**
 * bench/diff: how long the differ takes on the largest lab-kernel objects, against an unchanged
 * copy and against a small patch (a line inserted at the top, which moves every __LINE__, and a
 * new function at the end), as a ratio to the time gcc takes to compile the same file in the
 * same run. Goal: under 2% of compile time.
 *
 *   node dist/bench/diff.js [FILE.c ...]     (default: kernel/sched/core.c mm/page_alloc.c kernel/exit.c)
 *   node dist/bench/diff.js ORIG.o PATCHED.o (start-up only: one diff-object process against node -e 0)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diffObjects, type EntrySizes } from "../src/diff/index.js";
import { readElf, writeElf } from "../src/elf/index.js";
import { probeEntrySizes } from "../src/kpatch-build/entry-size-probe.js";
import { readKbuildCmd } from "../src/kpatch-build/kbuild-tree.js";
import { compilerArgs, SECTION_FLAGS, savedCommand } from "../src/kpatch-build/object-compile.js";
import { labBuildDir } from "../src/lab/paths.js";
import { execCheck } from "../src/util/exec.js";

const buildDir = labBuildDir("6.12");

function compileArgs(file: string, src: string, out: string): string[] {
  const obj = file.replace(/\.c$/, ".o");
  return compilerArgs(savedCommand(buildDir, obj), { source: src, out, flags: SECTION_FLAGS.split(" ") });
}

function sourceDir(): string {
  return readKbuildCmd(buildDir, "kernel/exit.o").source!.slice(0, -"/kernel/exit.c".length);
}

async function compile(file: string, text: string, dir: string): Promise<{ obj: string; ms: number }> {
  mkdirSync(dir, { recursive: true });
  const base = file.slice(file.lastIndexOf("/") + 1);
  writeFileSync(join(dir, base), text);
  const obj = join(dir, base.replace(/\.c$/, ".o"));
  const args = compileArgs(file, join(dir, base), obj);
  const t0 = performance.now();
  await execCheck(args[0]!, args.slice(1), { cwd: buildDir, what: `compiling ${file}` });
  return { obj, ms: performance.now() - t0 };
}

/** Reading both objects, diffing and writing the output: what `diff-object` does. */
function timeDiff(
  origPath: string,
  patchedPath: string,
  entrySizes: EntrySizes,
  runs = 5,
): { ms: number; readMs: number; changed: number } {
  let best = Number.POSITIVE_INFINITY;
  let readMs = 0;
  let changed = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const orig = readElf(readFileSync(origPath), origPath);
    const patched = readElf(readFileSync(patchedPath), patchedPath);
    const t1 = performance.now();
    const result = diffObjects(orig, patched, { entrySizes });
    if (result.output) writeElf(result.output);
    const total = performance.now() - t0;
    if (total < best) {
      best = total;
      readMs = t1 - t0;
    }
    changed = result.report.changed.length + result.report.new.length;
  }
  return { ms: best, readMs, changed };
}

const KPATCH_BUILD = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");

/**
 * Wall time of a process, best and median of `runs`, and its CPU time (user + system, median):
 * on a loaded machine wall time waits for a core, CPU time does not.
 */
function timeProcess(args: string[], runs = 11): { best: number; median: number; cpu: number } {
  const times: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    // The child reports its own CPU time at exit (CPU_REPORTER).
    const r = spawnSync(process.execPath, ["--import", CPU_REPORTER, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    times.push(performance.now() - t0);
    const m = /kpatch-bench-cpu (\d+(?:\.\d+)?)/.exec(r.stderr.toString());
    if (m) cpus.push(Number(m[1]));
    if (r.status !== 0 && r.status !== 3) throw new Error(`${args.join(" ")}: exit ${r.status}`);
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  return { best: times[0]!, median: times[times.length >> 1]!, cpu: cpus[cpus.length >> 1] ?? Number.NaN };
}

/** A module preloaded into each timed process: prints the process's CPU time at exit. */
const CPU_REPORTER = `data:text/javascript,process.on("exit",()=>{const u=process.cpuUsage();process.stderr.write("kpatch-bench-cpu "+((u.user+u.system)/1000).toFixed(1)+"\\n")})`;

/** One diff-object process per run, on `orig`/`patched`, against the floor of `node -e 0`. */
function startup(label: string, orig: string, patched: string, out: string, sizes: string): void {
  const floor = timeProcess(["-e", "0"]);
  const base = [KPATCH_BUILD, "diff-object", orig, patched, "-o", out, "--entry-sizes", sizes];
  const quiet = timeProcess([...base, "--quiet"]);
  const text = timeProcess(base);
  const kb = statSync(orig).size / 1024;
  const row = (what: string, t: { best: number; median: number; cpu: number }) =>
    process.stdout.write(
      `${label.padEnd(22)} ${kb.toFixed(0).padStart(7)} KB  ${what.padEnd(30)} best ${t.best.toFixed(0).padStart(5)} ms  median ${t.median.toFixed(0).padStart(5)} ms  (${(t.median / floor.median).toFixed(2)}x node -e 0)  CPU ${t.cpu.toFixed(0).padStart(4)} ms (${(t.cpu / floor.cpu).toFixed(2)}x)\n`,
    );
  row("node -e 0 (floor)", floor);
  row("diff-object --quiet", quiet);
  row("diff-object, text report", text);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length === 2 && args.every((a) => a.endsWith(".o"))) {
    // Start-up alone, on two objects given (no lab kernel needed).
    const work = mkdtempSync(join(tmpdir(), "kpatch-bench-diff-"));
    try {
      startup(args[1]!.split("/").pop()!, args[0]!, args[1]!, join(work, "out.o"), "bug=12,ex=12,alt=14");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return;
  }
  if (!existsSync(join(buildDir, ".config"))) {
    process.stderr.write(`bench/diff: the lab kernel is not built (${buildDir})\n`);
    process.exitCode = 1;
    return;
  }
  const files =
    process.argv.slice(2).length > 0
      ? process.argv.slice(2)
      : ["kernel/sched/core.c", "mm/page_alloc.c", "kernel/exit.c"];
  const entrySizes = await probeEntrySizes(buildDir);
  const src = sourceDir();
  const work = mkdtempSync(join(tmpdir(), "kpatch-bench-diff-"));
  const sizes = Object.entries(entrySizes)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const largest = { kb: 0, orig: "", patched: "", file: "" };
  try {
    process.stdout.write(
      "file                    gcc ms   object KB  unchanged ms  (%gcc)   patched ms  (%gcc)  of which reading ms  changed+new\n",
    );
    for (const file of files) {
      const text = readFileSync(join(src, file), "utf8");
      const patchedText = `/* kpatch-ts bench: every line below moved */\n${text}\nint kpatch_bench_new(int x);\nint kpatch_bench_new(int x) { return x + 1; }\n`;
      const orig = await compile(file, text, join(work, "orig"));
      const patched = await compile(file, patchedText, join(work, "patched"));
      const gccMs = Math.min(orig.ms, patched.ms);
      const same = timeDiff(orig.obj, orig.obj, entrySizes);
      const small = timeDiff(orig.obj, patched.obj, entrySizes);
      const kb = readFileSync(orig.obj).length / 1024;
      if (kb > largest.kb) Object.assign(largest, { kb, orig: orig.obj, patched: patched.obj, file });
      const pct = (ms: number) => `${((100 * ms) / gccMs).toFixed(2)}%`;
      process.stdout.write(
        `${file.padEnd(22)} ${gccMs.toFixed(0).padStart(7)} ${kb.toFixed(0).padStart(10)} ${same.ms.toFixed(1).padStart(13)} ${pct(same.ms).padStart(8)} ${small.ms.toFixed(1).padStart(12)} ${pct(small.ms).padStart(7)} ${small.readMs.toFixed(1).padStart(20)} ${String(small.changed).padStart(12)}\n`,
      );
    }
    process.stdout.write("\none diff-object process (start-up included):\n");
    const smallFile = "fs/proc/cmdline.c";
    const text = readFileSync(join(src, smallFile), "utf8");
    const o = await compile(smallFile, text, join(work, "small-orig"));
    const p = await compile(
      smallFile,
      text.replace(
        "seq_puts(m, saved_command_line);",
        'seq_puts(m, saved_command_line);\n\tseq_puts(m, " ");',
      ),
      join(work, "small-patched"),
    );
    startup(smallFile, o.obj, p.obj, join(work, "small-out.o"), sizes);
    if (largest.orig) startup(largest.file, largest.orig, largest.patched, join(work, "large-out.o"), sizes);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
