/**
 * Fuzzing the differ's special-section cutters (entry tables, payloads, parallel arrays, code
 * pieces, descriptors, runtime constants) with random entry sizes and contents: a real pair of
 * objects (compiled at test time, one function changed) gets random special sections added to
 * both, the same plan in each with small differences in the patched one, written and read back
 * (readElf() decides what an object can be), then diffed with random entry sizes. Only typed
 * errors (KpatchError: DiffError, ElfError) may come out, never a crash, and every output must
 * write and read back. Deterministic: a seeded PRNG ($KPATCH_FUZZ_SEED). 2,000 cases in the
 * suite; KPATCH_FUZZ_CASES=100000 for the long run.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { diffObjects, type EntrySizes } from "../src/diff/index.js";
import { ENTRY_SIZE_KEYS } from "../src/diff/special/special-kind.js";
import { SPECIAL_KINDS } from "../src/diff/special/table.js";
import {
  type ElfFile,
  type ElfSymbol,
  readElf,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_LINK_ORDER,
  SHF_WRITE,
  SHT_PROGBITS,
  writeElf,
} from "../src/elf/index.js";
import { KpatchError } from "../src/util/errors.js";
import { compileC } from "./helpers/elf-tools.js";
import { FUZZ_SEED, fuzzCases, prng, SLOW_MS } from "./helpers/fuzz-run.js";

const CASES = fuzzCases(2_000);
const SEED = FUZZ_SEED;

const SOURCE = `
int helper(int x) { return x * 3 + 1; }
int worker(int x) { return helper(x) + CHANGE; }
int other(int x) { if (x > 7) return helper(x - 1); return x; }
`;

/** Every section a cutter reads: tables, their payloads and parallel arrays, code pieces, descriptors. */
const SECTION_NAMES: readonly string[] = [
  ...new Set([
    ...SPECIAL_KINDS.flatMap((k) => [k.name, k.payload, k.parallel?.name]),
    ".altinstr_aux",
    ".fixup",
    ".text..refcount",
    "__dyndbg",
    "__verbose",
    "__dyndbg_classes",
    "runtime_ptr_USER_PTR_MAX",
    "runtime_shift_d_hash_shift",
  ]),
].filter((n): n is string => n !== undefined);
const CODE_SECTIONS = new Set([".altinstr_replacement", ".altinstr_aux", ".fixup", ".text..refcount"]);

/** R_X86_64_: NONE, 64, PC32, PLT32, 32, 32S, 16, PC16, 8, PC8, PC64, REX_GOTPCRELX, and any. */
const RELOC_TYPES = [0, 1, 2, 4, 10, 11, 12, 13, 14, 15, 24, 42];

interface Plan {
  sections: {
    name: string;
    stride: number;
    size: number;
    fill: "random" | "zero" | "code";
    fields: number[];
    relocs: { offset: number; type: number; target: number; addend: bigint }[];
    flags: bigint;
  }[];
  entrySizes: EntrySizes;
  /** References from the functions' code into the added sections (jumps into .altinstr_aux...). */
  codeRefs: { from: number; offset: number; to: number; addend: bigint }[];
}

// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: a random plan draws each choice in turn; the draws' order is the seed's meaning
function makePlan(r: () => number): Plan {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
  const int = (n: number) => Math.floor(r() * n);
  const sections: Plan["sections"] = [];
  const n = 1 + int(3);
  for (let i = 0; i < n; i++) {
    const name = pick(SECTION_NAMES);
    const kind = SPECIAL_KINDS.find((k) => k.name === name);
    // Most sections well formed (the kind's size, 4-byte fields, the anchor in each entry),
    // so that the cutters past the layout check are reached; the rest anything.
    const wellFormed = r() < 0.7;
    const fixed = typeof kind?.size === "number" ? kind.size : undefined;
    const stride = wellFormed
      ? (fixed ?? pick([8, 12, 13, 14, 16, 24]))
      : pick([1, 2, 4, 6, 8, 12, 13, 14, 16, 24, 1 + int(40)]);
    const count = int(12);
    const size = Math.max(0, stride * count + (!wellFormed && r() < 0.25 ? int(7) - 3 : 0));
    const fields = wellFormed
      ? [kind?.anchor ?? 0, ...(stride >= 8 && r() < 0.7 ? [4] : [])]
      : [...new Set(Array.from({ length: 1 + int(3) }, () => (r() < 0.7 ? 4 * int(4) : int(stride + 3))))];
    const relocs: Plan["sections"][number]["relocs"] = [];
    for (let e = 0; e < count; e++) {
      for (const f of fields) {
        const offset = r() < 0.05 ? int(size + 4) : e * stride + f;
        // Mostly inside the section: readElf() refuses a relocation past its end (a few test that).
        if (r() < (wellFormed ? 0.03 : 0.15) || (offset >= size && r() < 0.97)) continue;
        const type = wellFormed ? (fixed === 8 ? 1 : 2) : r() < 0.9 ? pick(RELOC_TYPES) : int(50);
        relocs.push({
          offset,
          type,
          target: int(1000),
          addend: r() < 0.8 ? BigInt(int(96) - 8) : BigInt(int(2 ** 31)) * (r() < 0.5 ? -1n : 1n),
        });
      }
    }
    let flags = SHF_ALLOC | (CODE_SECTIONS.has(name) ? SHF_EXECINSTR : 0n);
    if (name.startsWith("__dyndbg") || name === "__verbose" || r() < 0.05) flags |= SHF_WRITE;
    if (r() < 0.05) flags |= SHF_LINK_ORDER;
    sections.push({ name, stride, size, fill: pick(["random", "zero", "code"]), fields, relocs, flags });
  }
  const entrySizes: EntrySizes = {};
  for (const key of ENTRY_SIZE_KEYS) {
    if (r() < 0.15) continue;
    const planned = sections.find((s) => SPECIAL_KINDS.some((k) => k.name === s.name && k.size === key));
    entrySizes[key] = planned && r() < 0.8 ? planned.stride : 1 + int(32);
  }
  const codeRefs = Array.from({ length: r() < 0.4 ? 1 + int(3) : 0 }, () => ({
    from: int(1000),
    offset: int(64),
    to: int(1000),
    addend: BigInt(int(40) - 4),
  }));
  return { sections, entrySizes, codeRefs };
}

/** Adds the plan's sections to `file`; `drift` changes a few of its bytes and relocations. */
function applyPlan(file: ElfFile, plan: Plan, r: () => number, drift: boolean): void {
  const code = file.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0n && s.data.length > 0);
  const functions = file.symbols.filter((s) => s.isFunction && s.section);
  const added: ElfSymbol[] = [];
  for (const p of plan.sections) {
    const data = new Uint8Array(p.size);
    if (p.fill === "random") for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
    if (p.fill === "code" && code.length > 0) {
      const src = code[Math.floor(r() * code.length)]!.data;
      for (let i = 0; i < data.length; i++) data[i] = src[i % src.length] ?? 0;
    }
    const flip = Math.floor(r() * data.length);
    if (drift && data.length > 0 && r() < 0.5) data[flip] = (data[flip] ?? 0) ^ 0x40;
    const link = p.flags & SHF_LINK_ORDER ? code[0] : undefined;
    const sec = file.addSection({
      name: p.name,
      type: SHT_PROGBITS,
      flags: p.flags,
      data,
      ...(link ? { link } : {}),
    });
    added.push(file.ensureSectionSymbol(sec));
  }
  const targets: ElfSymbol[] = [
    ...functions,
    ...code.map((s) => file.ensureSectionSymbol(s)),
    ...added,
    ...file.symbols.filter((s) => s.isUndefined && s.name !== ""),
  ];
  for (const ref of plan.codeRefs) {
    const from = code[ref.from % code.length];
    if (!from || added.length === 0 || ref.offset >= from.size) continue;
    file.addReloc(from, {
      offset: ref.offset,
      type: 2,
      symbol: added[ref.to % added.length]!,
      addend: ref.addend,
    });
  }
  plan.sections.forEach((p, i) => {
    const sec = added[i]!.section!;
    for (const rel of p.relocs) {
      if (drift && r() < 0.05) continue;
      file.addReloc(sec, {
        offset: rel.offset,
        type: rel.type,
        symbol: targets[rel.target % targets.length]!,
        addend: rel.addend,
      });
    }
  });
}

test(`the differ's special-section cutters throw nothing but typed errors on ${CASES} random sections`, (t) => {
  const orig = compileC("fuzz-orig", SOURCE.replace("CHANGE", "1"), ["-mfentry", "-pg"]).bytes;
  const patched = compileC("fuzz-patched", SOURCE.replace("CHANGE", "2"), ["-mfentry", "-pg"]).bytes;
  // The pair itself diffs: the cutters are reached.
  assert.equal(diffObjects(readElf(orig, "orig.o"), readElf(patched, "patched.o")).changed, true);
  const outcomes = new Map<string, number>();
  const failures: string[] = [];
  let slowest = 0;
  for (let c = 0; c < CASES; c++) {
    const r = prng(SEED + c);
    const plan = makePlan(r);
    const t0 = performance.now();
    let outcome: string;
    try {
      const o = readElf(writeElfWith(orig, "orig.o", plan, r, false), "orig.o");
      const p = readElf(writeElfWith(patched, "patched.o", plan, r, r() < 0.5), "patched.o");
      const result = diffObjects(o, p, { entrySizes: plan.entrySizes });
      if (result.output) readElf(writeElf(result.output), "out.o");
      outcome = result.changed ? "diffed" : "unchanged";
    } catch (e) {
      if (!(e instanceof KpatchError)) {
        failures.push(`case ${c}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        outcome = "crash";
      } else outcome = e.code;
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    if (ms > SLOW_MS) failures.push(`case ${c}: took ${ms.toFixed(0)} ms`);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  const summary = [...outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
  t.diagnostic(
    `${CASES} cases (seed 0x${SEED.toString(16)}), slowest ${slowest.toFixed(1)} ms: ${summary.join(", ")}`,
  );
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${CASES} cases crashed or hung`);
  // The run reached both ends: some cases diffed, some were refused.
  assert.ok((outcomes.get("diffed") ?? 0) > 0 && outcomes.size > 2, summary.join(", "));
});

function writeElfWith(
  bytes: Uint8Array,
  path: string,
  plan: Plan,
  r: () => number,
  drift: boolean,
): Uint8Array {
  const file = readElf(bytes, path);
  applyPlan(file, plan, r, drift);
  return writeElf(file);
}
