/**
 * kpatch load's run-pre check against the running kernel's text, on Debian's stock kernel booted
 * by the distro lab (CONFIG_PROC_KCORE=y, IBT, call depth tracking, retpolines and return thunks,
 * static calls, jump labels, paravirt as Debian ships it): modules built by kpatch-build
 * --kernel-release carry the original code of each function they replace (.kpatch.runpre); in
 * the guest `kpatch load --json` compares it through /proc/kcore (every function compared, none
 * mismatched) and loads. A module whose record does not match the running kernel (one instruction
 * of the recorded original changed, as an edited "before" tree would record it) is refused before
 * insmod with exit 4, the function and both instructions named, and nothing loaded;
 * --skip-run-pre loads it with a warning. Series: KPATCH_LAB_SERIES (6.12 by default).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { readElf, writeElf } from "../src/elf/index.js";
import { requireDistroLab } from "../src/lab/distro.js";
import { type GuestResult, runGuest } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { testSeries } from "../src/lab/paths.js";
import { decodeRunPreRecord, encodeRunPreRecord, RUNPRE_SECTION } from "../src/run-pre/runpre-record.js";
import { x86Decoder } from "../src/x86/index.js";
import { CASES } from "./helpers/kpatch-build-distro-cases.js";

const run = promisify(execFile);
const series = testSeries();
const lab = requireDistroLab(series);
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const out = mkdtempSync(join(tmpdir(), "run-pre-live-"));
test.after(() => rmSync(out, { recursive: true, force: true }));

/** vmlinux functions with tracepoints, static calls, alternatives; a module's function. */
const NAMES = ["comm-tracepoint", "fd-static-call", "meminfo-inline", "binfmt-module"];
const cases = CASES[series].filter((c) => NAMES.includes(c.name));
const modName = (name: string) => `livepatch_${name.replace(/-/g, "_")}`;
const built = new Map<string, { ko: string; functions: number; bytes: number }>();

test("kpatch-build records each replaced function's original in the module's .kpatch.runpre", async () => {
  for (const c of cases) {
    const r = await run(
      "nice",
      [
        "-n",
        "5",
        "node",
        cli,
        "--kernel-release",
        lab.kernelRelease,
        "-n",
        `livepatch-${c.name}`,
        "-o",
        out,
        "-j",
        "2",
        c.patch,
      ],
      { maxBuffer: 64 << 20 },
    );
    const ko = join(out, `livepatch-${c.name}.ko`);
    const elf = readElf(readFileSync(ko), ko);
    const sec = elf.sections.find((s) => s.name === RUNPRE_SECTION);
    assert.ok(sec, `${c.name}: ${RUNPRE_SECTION} present`);
    assert.equal(sec.flags & 2n, 0n, "not SHF_ALLOC: the module loader does not copy it");
    const record = decodeRunPreRecord(sec.data);
    assert.deepEqual(
      record.map((f) => `${f.object}: ${f.name}`),
      c.funcs,
      `${c.name}: the functions the patch replaces`,
    );
    assert.match(r.stderr + r.stdout, /-byte run-pre record/);
    built.set(c.name, { ko, functions: record.length, bytes: sec.data.length });
    process.stdout.write(`# ${c.name}: ${record.length} functions, ${sec.data.length}-byte record\n`);
  }
});

/**
 * The comm-tracepoint module with one instruction of its recorded original changed (the last
 * byte of the first instruction no relocation fills in and no rewrite site covers, past the
 * entry): what kpatch-build records from a "before" tree edited without rebuilding the kernel.
 */
function mismatchedModule(): { file: string; offset: number } {
  const good = built.get("comm-tracepoint")!;
  const elf = readElf(readFileSync(good.ko), good.ko);
  const sec = elf.sections.find((s) => s.name === RUNPRE_SECTION)!;
  const record = decodeRunPreRecord(sec.data);
  const code = record[0]!.code;
  const insn = x86Decoder()
    .decodeRange(code.bytes, 0, code.bytes.length)
    .find((i) => {
      if (i.offset < 16 || i.length < 3 || i.kind !== "other") return false;
      for (let k = i.offset; k < i.offset + i.length; k++) if (code.linked[k]) return false;
      return ![...code.sites].some(([at, s]) => at <= i.offset && i.offset < at + Math.max(s.length ?? 0, 1));
    });
  assert.ok(insn, "an instruction to change");
  code.bytes[insn.offset + insn.length - 1]! ^= 0x01;
  sec.data = encodeRunPreRecord(record);
  const file = join(out, "livepatch-mismatch.ko");
  writeFileSync(file, writeElf(elf));
  return { file, offset: insn.offset };
}

let guest: GuestResult | undefined;
const at = (marker: string) => guest!.commands.find((r) => r.command.includes(marker))!;

/** `kpatch load --json` with its stderr after a marker, keeping kpatch's exit status. */
const loadJson = (file: string, extra = "") =>
  `sh -c 'kpatch load --json ${extra} ${file} 2>/tmp/err; s=$?; echo "@@stderr"; cat /tmp/err; exit $s' # ${file}${extra}`;

test("in the guest: each module is compared through /proc/kcore and loads; a mismatched record is refused with exit 4", {
  timeout: 1_200_000,
}, async () => {
  assert.equal(built.size, cases.length, "every module was built");
  const bad = mismatchedModule();
  const kpatch = await kpatchInGuest(lab);
  const binfmt = join(out, "binfmt_misc.ko");
  const xz = join(lab.modulesDir, "kernel", "fs", "binfmt_misc.ko.xz");
  await run("sh", [
    "-c",
    existsSync(xz) ? 'xz -dc -- "$0" > "$1"' : 'cp -- "$0" "$1"',
    existsSync(xz) ? xz : xz.slice(0, -3),
    binfmt,
  ]);
  const commands = [kpatch.setup, "insmod binfmt_misc.ko"];
  for (const c of cases)
    commands.push(loadJson(`livepatch-${c.name}.ko`), `kpatch unload ${modName(c.name)}`);
  commands.push(
    loadJson("livepatch-mismatch.ko"),
    "ls /sys/kernel/livepatch; grep -c '^livepatch_' /proc/modules || true # after refusal",
    loadJson("livepatch-mismatch.ko", "--skip-run-pre"),
    `kpatch unload ${modName("comm-tracepoint")} # override`,
    "rmmod binfmt_misc",
  );
  guest = await runGuest({
    lab,
    shareHost: true,
    files: [kpatch.file, ...[...built.values()].map((b) => b.ko), bad.file, binfmt],
    commands,
    timeoutMs: 900_000,
    memoryMb: 1024,
  });
  for (const c of cases) {
    const r = at(`# livepatch-${c.name}.ko`);
    assert.equal(r.exitCode, 0, r.output);
    const json = JSON.parse(r.output.slice(0, r.output.indexOf("@@stderr")));
    const code = json.results[0].runPre.code;
    const n = built.get(c.name)!.functions;
    assert.equal(code.functions.length, n, `${c.name}: every recorded function compared`);
    assert.equal(code.mismatched, 0, `${c.name}: ${JSON.stringify(code.functions)}`);
    assert.match(
      r.output,
      /run-pre check: \d+ functions checked against \/proc\/kcore: .*0 mismatched \([\d.]+ ms\)/,
    );
    process.stdout.write(
      `# ${c.name}: ${code.functions.length} compared, ${code.matched} matched, ${code.allowed} with allowed differences (${code.functions.flatMap((f: { allowed: { kind: string }[] }) => f.allowed.map((a) => a.kind)).join(", ")}), ${code.ms.toFixed(1)} ms\n`,
    );
  }
  const refused = at("# livepatch-mismatch.ko");
  assert.equal(refused.exitCode, 4, refused.output);
  assert.match(refused.output, /MISMATCH vmlinux: __set_task_comm/);
  assert.match(
    refused.output,
    new RegExp(`at \\+0x${bad.offset.toString(16)}: original build: .*\\n\\s+target kernel: `),
  );
  assert.match(refused.output, /\[KPATCH_RUNPRE_MISMATCH\]/);
  const json = JSON.parse(refused.output.slice(0, refused.output.indexOf("@@stderr")));
  assert.equal(json.error.runPre.mismatched, 1);
  assert.equal(at("# after refusal").output.trim(), "0", "nothing loaded");
  const forced = at("# livepatch-mismatch.ko--skip-run-pre");
  assert.equal(forced.exitCode, 0, forced.output);
  assert.match(forced.output, /WARNING: --skip-run-pre: loading although/);
  assert.equal(at("# override").exitCode, 0);
  assert.doesNotMatch(guest.kernelLog, /Call Trace/);
});
