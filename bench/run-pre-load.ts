/**
 * bench/run-pre-load: what kpatch load's code comparison adds to a load, on this machine: a
 * fresh node process (as `kpatch load` is) reads a module's .kpatch.runpre record and compares
 * every recorded function, in live mode, with bytes that differ from it at each fentry site (a
 * running kernel's nop5), so the x86 decoder (iced-x86, WebAssembly) is loaded and used as it
 * is at a real load. /proc/kcore's reads are a few pread()s and not counted. Modules: the
 * arguments (a patch module, or any kernel module: its functions of 1.5 to 2.5 KB), else the lab
 * patches cmdline and meminfo-inline built by kpatch-build. Prints wall and CPU time, and whether
 * iced-x86 had to start.
 *
 *   node dist/bench/run-pre-load.js [MODULE.ko...]
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type ElfFile, readElf } from "../src/elf/index.js";
import { compareCode } from "../src/run-pre/compare-code.js";
import { type FunctionCode, functionCode } from "../src/run-pre/function-code.js";
import { decodeRunPreRecord, RUNPRE_SECTION } from "../src/run-pre/runpre-record.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");

/**
 * The functions to compare: a patch module's .kpatch.runpre record, or (any other object, a
 * kernel module) its functions of 1.5 to 2.5 KB, as run-pre would record them.
 */
function functionsOf(elf: ElfFile, path: string): { name: string; code: FunctionCode }[] {
  const sec = elf.sections.find((s) => s.name === RUNPRE_SECTION);
  if (sec) return decodeRunPreRecord(sec.data, path);
  return elf.symbols
    .filter((s) => s.isFunction && s.section && s.size >= 1536n && s.size <= 2560n)
    .slice(0, 8)
    .map((s) => ({ name: s.name, code: functionCode(elf, s) }));
}

/** In the child: one module, timed from the record's read to the last comparison. */
function measureOne(ko: string): void {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const elf = readElf(readFileSync(ko), ko);
  const record = functionsOf(elf, ko);
  const compareCpu = process.cpuUsage();
  let allowed = 0;
  for (const f of record) {
    const live = Uint8Array.from(f.code.bytes);
    for (const [at, site] of f.code.sites)
      if (site.kind === "fentry") live.set([0x0f, 0x1f, 0x44, 0x00, 0x00], at);
    const r = compareCode(f.code, { bytes: live }, "live");
    if (r.mismatch) throw new Error(`${f.name}: ${r.mismatch.reason}`);
    allowed += r.allowed.length;
  }
  const compared = process.cpuUsage(compareCpu);
  const compareCpuMs = (compared.user + compared.system) / 1000;
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  const size = record.reduce((n, f) => n + f.code.bytes.length, 0);
  const iced = Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes("iced-x86"));
  process.stdout.write(
    `${JSON.stringify({ functions: record.length, codeBytes: size, allowed, ms, cpuMs, compareCpuMs, iced })}\n`,
  );
}

async function main(): Promise<void> {
  if (process.argv[2] === "--one") return measureOne(process.argv[3]!);
  let modules = process.argv.slice(2);
  const out = mkdtempSync(join(tmpdir(), "bench-run-pre-load-"));
  try {
    if (modules.length === 0) {
      const cli = join(root, "dist", "src", "cli", "kpatch-build.js");
      for (const p of ["cmdline", "meminfo-inline"]) {
        const patch = join(root, "test", "fixtures", "patches", "6.12", `${p}.patch`);
        await run("node", [cli, "-n", `bench-${p}`, "-o", out, "-j", "2", patch], { maxBuffer: 64 << 20 });
        modules.push(join(out, `bench-${p}.ko`));
      }
    }
    modules = modules.filter(Boolean);
    for (const ko of modules) {
      const times: number[] = [];
      const cpus: number[] = [];
      const compares: number[] = [];
      let last = "";
      for (let i = 0; i < 5; i++) {
        const r = await run("node", [import.meta.filename, "--one", ko]);
        last = r.stdout.trim();
        times.push(JSON.parse(last).ms);
        cpus.push(JSON.parse(last).cpuMs);
        compares.push(JSON.parse(last).compareCpuMs);
      }
      const m = JSON.parse(last);
      times.sort((a, b) => a - b);
      cpus.sort((a, b) => a - b);
      compares.sort((a, b) => a - b);
      process.stdout.write(
        `${ko.split("/").pop()}: ${m.functions} functions, ${m.codeBytes} bytes of code; comparison ${times[2]!.toFixed(1)} ms wall, ${cpus[2]!.toFixed(1)} ms CPU (${compares[2]!.toFixed(1)} of them comparing), median of 5 fresh processes (wall min ${times[0]!.toFixed(1)}, max ${times[4]!.toFixed(1)}); iced-x86 ${m.iced ? "started" : "not started"}\n`,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

await main();
