/**
 * bench/run-pre-load: what kpatch load's code comparison adds to a load, on this machine: a
 * fresh node process (as `kpatch load` is) reads a module's .kpatch.runpre record and compares
 * every recorded function, in live mode, with bytes that differ from it at each fentry site (a
 * running kernel's nop5), so the x86 decoder (iced-x86, WebAssembly) is loaded and used as it
 * is at a real load. /proc/kcore's reads are a few pread()s and not counted. Modules: the
 * arguments, else the lab patches cmdline and meminfo-inline built by kpatch-build.
 *
 *   node dist/bench/run-pre-load.js [MODULE.ko...]
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readElf } from "../src/elf/index.js";
import { compareCode } from "../src/run-pre/compare-code.js";
import { decodeRunPreRecord, RUNPRE_SECTION } from "../src/run-pre/runpre-record.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");

/** In the child: one module, timed from the record's read to the last comparison. */
function measureOne(ko: string): void {
  const started = performance.now();
  const elf = readElf(readFileSync(ko), ko);
  const sec = elf.sections.find((s) => s.name === RUNPRE_SECTION);
  if (!sec) throw new Error(`${ko} has no ${RUNPRE_SECTION}`);
  const record = decodeRunPreRecord(sec.data, ko);
  let allowed = 0;
  for (const f of record) {
    const live = Uint8Array.from(f.code.bytes);
    for (const [at, site] of f.code.sites)
      if (site.kind === "fentry") live.set([0x0f, 0x1f, 0x44, 0x00, 0x00], at);
    const r = compareCode(f.code, { bytes: live }, "live");
    if (r.mismatch) throw new Error(`${f.name}: ${r.mismatch.reason}`);
    allowed += r.allowed.length;
  }
  const ms = performance.now() - started;
  const size = record.reduce((n, f) => n + f.code.bytes.length, 0);
  process.stdout.write(
    `${JSON.stringify({ functions: record.length, codeBytes: size, recordBytes: sec.data.length, allowed, ms })}\n`,
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
      let last = "";
      for (let i = 0; i < 5; i++) {
        const r = await run("node", [import.meta.filename, "--one", ko]);
        last = r.stdout.trim();
        times.push(JSON.parse(last).ms);
      }
      const m = JSON.parse(last);
      times.sort((a, b) => a - b);
      process.stdout.write(
        `${ko.split("/").pop()}: ${m.functions} functions, ${m.codeBytes} bytes of code, ${m.recordBytes}-byte record; comparison ${times[2]!.toFixed(1)} ms median of 5 fresh processes (min ${times[0]!.toFixed(1)}, max ${times[4]!.toFixed(1)})\n`,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

await main();
