/**
 * The differ's corpus (test/fixtures/diff): every case compiled with the kernel's flags, diffed,
 * and held to its expect.json (verdict, callbacks, ignored and forced names, warnings). Module cases build against the lab kernel tree and are skipped
 * when it is not there. KPATCH_DIFF_CASES=a,b runs only the cases named.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  type DiffReport,
  diffObjects,
  type EntrySizes,
  ExportTable,
  formatReport,
  isDiffError,
  parseEntrySizes,
  TargetSymbols,
} from "../src/diff/index.js";
import { type ElfFile, readElf, SHF_EXECINSTR, writeElf } from "../src/elf/index.js";
import { takeCallbacks } from "../src/klp/callbacks.js";
import { probeEntrySizes } from "../src/kpatch-build/entry-size-probe.js";
import { cachePath } from "../src/util/cache-dir.js";
import { buildModuleCases, type Case, compilePlainCase, listCases } from "./fixtures/diff/harness.js";

const work = mkdtempSync(join(tmpdir(), "kpatch-diff-corpus-"));
after(() => rmSync(work, { recursive: true, force: true }));

function check(c: Case, origPath: string, patchedPath: string, entrySizes: EntrySizes): void {
  const orig = readElf(readFileSync(origPath), origPath);
  const patched = readElf(readFileSync(patchedPath), patchedPath);
  const e = c.expect;
  const options = {
    entrySizes: { ...entrySizes, ...(e.entrySizes ? parseEntrySizes(e.entrySizes) : {}) },
    ...(e.target ? { target: e.target } : {}),
    ...(e.exports ? { exports: exportTable(e.exports) } : {}),
    ...(e.systemMap ? { symbols: TargetSymbols.fromSystemMap(e.systemMap.join("\n")) } : {}),
  };
  if (e.error) {
    assert.throws(
      () => diffObjects(orig, patched, options),
      (err: unknown) =>
        isDiffError(err) && err.code === e.error && (!e.message || new RegExp(e.message).test(err.message)),
      `${c.name}: expected ${e.error}${e.message ? ` matching /${e.message}/` : ""}`,
    );
    return;
  }
  const result = diffObjects(orig, patched, options);
  const changed = result.report.changed.map((f) => f.name).sort();
  const added = result.report.new.map((f) => f.name).sort();
  assert.deepEqual(changed, [...(e.changed ?? [])].sort(), `${c.name}: changed functions`);
  assert.deepEqual(added, [...(e.new ?? [])].sort(), `${c.name}: new functions`);
  const carried = result.report.carried.map((f) => f.name).sort();
  assert.deepEqual(carried, [...(e.carried ?? [])].sort(), `${c.name}: carried functions`);
  const copied = result.report.copied.map((f) => f.name).sort();
  assert.deepEqual(copied, [...(e.copied ?? [])].sort(), `${c.name}: copied locals`);
  checkDirectives(c, result.report);
  if (e.status === "unchanged") {
    assert.equal(result.changed, false, `${c.name}: expected no change`);
    return;
  }
  assert.equal(result.changed, true, `${c.name}: expected a change`);
  for (const d of e.data ?? []) {
    assert.ok(
      result.report.data.some((x) => x.name === d),
      `${c.name}: ${d} not among the included data (${result.report.data.map((x) => x.name).join(", ")})`,
    );
  }
  // The output must be a valid object that reads back.
  const bytes = writeElf(result.output!);
  const back = readElf(bytes, `${c.name}/out.o`);
  for (const f of [...changed, ...added, ...carried, ...copied])
    assert.ok(back.findSymbol(f), `${c.name}: ${f} not in the output`);
  for (const k of e.klp ?? []) assert.ok(back.findSymbol(k), `${c.name}: ${k} not in the output`);
  for (const d of e.defined ?? [])
    assert.ok(
      back.findSymbols(d).some((s) => s.section),
      `${c.name}: ${d} must be defined in the output`,
    );
  for (const a of e.absent ?? [])
    assert.ok(!back.findSymbols(a).some((s) => s.section), `${c.name}: ${a} must not be in the output`);
  for (const [name, size] of Object.entries(e.sizes ?? {})) {
    const got = back.sections.filter((s) => s.name === name).reduce((n, s) => n + s.size, 0);
    assert.equal(got, size, `${c.name}: size of ${name} in the output`);
  }
  for (const [name, targets] of Object.entries(e.relocTargets ?? {})) {
    const got = back.sections
      .filter((s) => s.name === name)
      .flatMap((s) => (s.rela?.relocs ?? []).map((r) => r.symbol.displayName));
    for (const t of targets)
      assert.ok(got.includes(t), `${c.name}: ${name} refers to ${t} (${got.join(", ")})`);
  }
  checkCodePieces(c, back, patched);
  checkCallbackSections(c, back, result.report);
}

/** A Module.symvers of the names given (name → exporting module). */
function exportTable(exports: Record<string, string>): ExportTable {
  const lines = Object.entries(exports).map(([name, owner]) => `0x0\t${name}\t${owner}\tEXPORT_SYMBOL`);
  return ExportTable.parse(lines.join("\n"));
}

/**
 * Every relocation of the output's code pieces (.altinstr_aux, .fixup) lands in the output itself (its copies of the
 * functions) or names something that is no function of the patched object (boot_cpu_data): a
 * jump back into the running kernel's copy of a function would be wrong.
 */
function checkCodePieces(c: Case, out: ElfFile, patched: ElfFile): void {
  for (const sec of out.sections.filter((s) => s.name === ".altinstr_aux" || s.name === ".fixup")) {
    for (const r of sec.rela?.relocs ?? []) {
      const sym = r.symbol;
      if (sym.section) {
        assert.ok(
          (sym.section.flags & SHF_EXECINSTR) !== 0n,
          `${c.name}: ${sec.name}+0x${r.offset.toString(16)}`,
        );
        continue;
      }
      const named = patched.findSymbols(sym.name).find((s) => s.section);
      assert.ok(!named?.isFunction, `${c.name}: ${sec.name} jumps to ${sym.name} outside the output`);
    }
  }
}

/** The report's callbacks, ignored names, forced functions and warnings, as expect.json says. */
function checkDirectives(c: Case, report: DiffReport): void {
  const e = c.expect;
  const callbacks = Object.fromEntries(report.callbacks.map((cb) => [cb.kind, cb.name]));
  assert.deepEqual(callbacks, e.callbacks ?? {}, `${c.name}: callbacks`);
  for (const [name, why] of Object.entries(e.ignored ?? {})) {
    const got = report.ignored.find((i) => i.name === name);
    assert.equal(got?.why, why, `${c.name}: ${name} ignored (${JSON.stringify(report.ignored)})`);
  }
  assert.deepEqual(
    report.forced.map((f) => f.name).sort(),
    [...(e.forced ?? [])].sort(),
    `${c.name}: forced`,
  );
  for (const n of e.notes ?? []) {
    assert.ok(
      report.notes.some((x) => new RegExp(n).test(x)),
      `${c.name}: no note matches /${n}/ (${report.notes.join(" | ")})`,
    );
  }
  const text = formatReport(report).split("\n");
  for (const l of e.reportLines ?? [])
    assert.ok(
      text.some((x) => new RegExp(l).test(x)),
      `${c.name}: no report line matches /${l}/ (${text.join(" | ")})`,
    );
  for (const w of e.warnings ?? []) {
    assert.ok(
      report.warnings.some((x) => new RegExp(w).test(x)),
      `${c.name}: no warning matches /${w}/ (${report.warnings.join(" | ")})`,
    );
  }
}

/**
 * The output keeps the callback sections and no other directive section, and the module
 * generator's reader (src/klp/callbacks.ts) finds each callback in it.
 */
function checkCallbackSections(c: Case, out: ElfFile, report: DiffReport): void {
  const directives = out.sections.filter((s) => s.name.startsWith(".kpatch_ts."));
  assert.deepEqual(
    directives.map((s) => s.name).sort(),
    report.callbacks.map((cb) => cb.section).sort(),
    `${c.name}: directive sections in the output`,
  );
  for (const cb of report.callbacks) {
    const fn = out.findSymbols(cb.name).find((s) => s.section);
    assert.ok(fn?.isFunction, `${c.name}: callback ${cb.name} not defined in the output`);
  }
  const taken = takeCallbacks(out, "__test_cb");
  assert.deepEqual(
    Object.keys(taken).sort(),
    report.callbacks.map((cb) => cb.kind).sort(),
    `${c.name}: callbacks the module generator reads`,
  );
  for (const cb of report.callbacks) {
    const alias = out.findSymbol(taken[cb.kind as keyof typeof taken]!)!;
    const fn = out.findSymbols(cb.name).find((s) => s.section)!;
    assert.ok(
      alias.section === fn.section && alias.value === fn.value,
      `${c.name}: ${cb.kind} -> ${cb.name}`,
    );
  }
}

/** KPATCH_DIFF_CASES=a,b runs only those cases (by hand, while working on them). */
const only = process.env["KPATCH_DIFF_CASES"]?.split(",").filter((n) => n !== "");
const cases = listCases().filter((c) => !only || only.includes(c.name));

describe("differ corpus (plain C)", () => {
  const pending = new Map<string, Promise<{ orig: string; patched: string }>>();
  // Compile two at a time: the machine has two cores.
  let chain: Promise<unknown> = Promise.resolve();
  for (const c of cases.filter((x) => !x.expect.module && (x.expect.compiler !== "clang" || hasClang()))) {
    const p = chain.then(() => compilePlainCase(c, join(work, "plain")));
    chain = p.catch(() => undefined);
    pending.set(c.name, p);
  }
  const noClang = hasClang() ? false : "clang is not installed (apt-get install clang)";
  for (const c of cases.filter((x) => !x.expect.module)) {
    const skip = c.expect.compiler === "clang" ? noClang : false;
    test(`${c.name}: ${c.expect.note ?? ""}`, { skip }, async () => {
      const { orig, patched } = await pending.get(c.name)!;
      check(c, orig, patched, parseEntrySizes("bug=12,ex=12,alt=14,jump=16,orc=6,static_call=8"));
    });
  }
});

function hasClang(): boolean {
  return spawnSync("clang", ["--version"], { stdio: "ignore" }).status === 0;
}

function labBuildDir(): string | undefined {
  const root = cachePath("lab");
  const current = join(root, "current-6.12", "build");
  if (existsSync(join(current, "Module.symvers"))) return current;
  if (!existsSync(root)) return undefined;
  for (const d of readdirSync(root)) {
    const b = join(root, d, "build");
    if (d.startsWith("6.12") && existsSync(join(b, "Module.symvers"))) return b;
  }
  return undefined;
}

describe("differ corpus (modules against the lab kernel)", () => {
  const moduleCases = cases.filter((x) => x.expect.module);
  const kdir = labBuildDir();
  let built: Promise<{ objs: Map<string, { orig: string; patched: string }>; sizes: EntrySizes }> | undefined;
  const build = () => {
    built ??= (async () => ({
      objs: await buildModuleCases(moduleCases, kdir!, join(work, "modules")),
      sizes: await probeEntrySizes(kdir!),
    }))();
    return built;
  };
  for (const c of moduleCases) {
    test(`${c.name}: ${c.expect.note ?? ""}`, {
      skip: kdir ? false : "the lab kernel tree is not built",
    }, async () => {
      const { objs, sizes } = await build();
      const o = objs.get(c.name)!;
      check(c, o.orig, o.patched, sizes);
    });
  }
});
