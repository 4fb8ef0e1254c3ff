/**
 * Fuzzing readElf()/writeElf() with mutated real objects: bit flips, truncations, random runs and
 * overwrites of header, section header, symbol, relocation, group and note fields with values that
 * break parsers (0, all ones, huge, counts and lengths off by one). Only ElfError may come out;
 * an object that reads must write (the same bytes with its relocations decoded or not), and what
 * it writes must read back as the same model. Deterministic: a seeded
 * PRNG ($KPATCH_FUZZ_SEED) over objects compiled at test time. 10,000 cases by default;
 * KPATCH_FUZZ_CASES=100000 for the long run; KPATCH_FUZZ_OBJECTS=a.o:b.o adds objects to mutate.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  SHT_GROUP,
  SHT_NOTE,
  SHT_PROGBITS,
  SHT_RELA,
  SHT_SYMTAB_SHNDX,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
} from "../src/elf/constants.js";
import { ElfError } from "../src/elf/elf-error.js";
import { createElf } from "../src/elf/elf-file.js";
import { EHDR, NHDR, RELA, SHDR, SYM } from "../src/elf/layout.js";
import { readElf } from "../src/elf/read-elf.js";
import { writeElf } from "../src/elf/write-elf.js";
import { compareElf } from "./helpers/compare-elf.js";
import { assemble, compileC } from "./helpers/elf-tools.js";
import { FUZZ_SEED, fuzzCases, prng, SLOW_MS } from "./helpers/fuzz-run.js";

const CASES = fuzzCases(10_000);
const SEED = FUZZ_SEED;

// Field widths in bytes, by the names of src/elf/layout.ts.
type Fields = Record<string, number>;
const EHDR_W: Fields = {
  type: 2,
  machine: 2,
  version: 4,
  entry: 8,
  phoff: 8,
  shoff: 8,
  flags: 4,
  ehsize: 2,
  phentsize: 2,
  phnum: 2,
  shentsize: 2,
  shnum: 2,
  shstrndx: 2,
};
const SHDR_W: Fields = {
  name: 4,
  type: 4,
  flags: 8,
  addr: 8,
  offset: 8,
  size: 8,
  link: 4,
  info: 4,
  addralign: 8,
  entsize: 8,
};
const SYM_W: Fields = { name: 4, info: 1, other: 1, shndx: 2, value: 8, size: 8 };
const RELA_W: Fields = { offset: 8, type: 4, sym: 4, addend: 8 };
const NHDR_W: Fields = { namesz: 4, descsz: 4, type: 4 };

interface Seed {
  name: string;
  bytes: Uint8Array;
  shoff: number;
  shnum: number;
  nsyms: number;
  sections: { type: number; offset: number; size: number }[];
  symtab: { offset: number; size: number } | undefined;
}

function describe(name: string, bytes: Uint8Array): Seed {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(EHDR.shoff, true));
  const shnum = v.getUint16(EHDR.shnum, true);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * SHDR.SIZE;
    sections.push({
      type: v.getUint32(at + SHDR.type, true),
      offset: Number(v.getBigUint64(at + SHDR.offset, true)),
      size: Number(v.getBigUint64(at + SHDR.size, true)),
    });
  }
  const elf = readElf(bytes, name);
  const symtab = elf.symtab ? sections[elf.symtab.index] : undefined;
  return { name, bytes, shoff, shnum, nsyms: elf.symbols.length, sections, symtab };
}

function seeds(): Seed[] {
  const c = compileC(
    "fuzz-c",
    `static int n; static const char *s[] = {"a", "b"}; extern void ext(const char *);
     int t[4]; static __attribute__((noinline)) void h(int i) { ext(s[i & 1]); n++; }
     int api(int x) { for (int i = 0; i < x; i++) h(i); return n + t[x & 3]; }`,
  );
  const g = compileC(
    "fuzz-g",
    "struct p { int x, y; }; int dot(struct p *a, struct p *b) { return a->x * b->x + a->y * b->y; }",
    ["-g"],
  );
  const asm = assemble(
    "fuzz-asm",
    `.section .text.grp,"axG",@progbits,gsym,comdat
     .globl gsym
     gsym: call other
     ret
     .section __patchable_function_entries,"awo",@progbits,.text.grp
     .quad gsym
     .section .eh_frame,"a",@unwind
     .quad gsym
     .section .note.Linux,"a",@note
     .long 6, 4, 0x100
     .asciz "Linux"
     .balign 4
     .long 7
     .section .note.gnu.property,"a",@note
     .balign 8
     .long 4, 16, 5
     .asciz "GNU"
     .long 0xc0000002, 4, 3
     .balign 8
     .globl absolute
     .set absolute, 0x1234
     .comm common, 8, 8`,
  );
  // A small object with an SHT_SYMTAB_SHNDX table, for mutations to SHN_XINDEX.
  const x = createElf();
  const text = x.addSection({
    name: ".text",
    type: SHT_PROGBITS,
    flags: 6n,
    data: Uint8Array.of(0xc3, 0xc3),
  });
  x.addSymbol({ name: "one", type: STT_FUNC, bind: STB_GLOBAL, section: text, size: 1n });
  x.addSymbol({ name: "two", type: STT_FUNC, bind: STB_GLOBAL, section: text, value: 1n, size: 1n });
  x.addSection({ name: ".symtab_shndx", type: SHT_SYMTAB_SHNDX, addralign: 4, entsize: 4, link: x.symtab });
  return [
    describe("fuzz-c.o", c.bytes),
    describe("fuzz-g.o", g.bytes),
    describe("fuzz-asm.o", asm.bytes),
    describe("fuzz-xindex.o", writeElf(x)),
    ...(process.env["KPATCH_FUZZ_OBJECTS"] ?? "")
      .split(":")
      .filter((path) => path !== "")
      .map((path) => describe(path, new Uint8Array(readFileSync(path)))),
  ];
}

type Mutation = (m: Uint8Array, v: DataView, s: Seed, r: () => number) => string;

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;

function interesting(width: number, s: Seed, r: () => number): bigint {
  const len = BigInt(s.bytes.length);
  const counts = [s.shnum, s.nsyms].flatMap((n) => [n - 1, n, n + 1]).map(BigInt);
  const common = [0n, 1n, 2n, ...counts, len - 1n, len, len + 1n];
  const byWidth: Record<number, bigint[]> = {
    1: [0x7fn, 0x80n, 0xffn, 0x10n, 0x12n, 0x22n],
    2: [0x7fffn, 0xff00n, 0xff20n, 0xfff1n, 0xfff2n, 0xffffn],
    4: [0x7fffffffn, 0x80000000n, 0xffffffffn, 0xfff0n, 0x10000n],
    8: [1n << 31n, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, 1n << 63n, (1n << 64n) - 1n, (1n << 64n) - 4n],
  };
  if (r() < 0.15)
    return BigInt(Math.floor(r() * 2 ** 32)) * (width === 8 ? BigInt(Math.floor(r() * 2 ** 32)) : 1n);
  return pick(r, [...common, ...byWidth[width]!]);
}

function setField(v: DataView, at: number, width: number, value: bigint): void {
  if (at < 0 || at + width > v.byteLength) return;
  const x = BigInt.asUintN(width * 8, value);
  if (width === 1) v.setUint8(at, Number(x));
  else if (width === 2) v.setUint16(at, Number(x), true);
  else if (width === 4) v.setUint32(at, Number(x), true);
  else v.setBigUint64(at, x, true);
}

function overwrite(table: Record<string, number>, widths: Fields, base: number): Mutation {
  return (_m, v, s, r) => {
    const field = pick(r, Object.keys(widths));
    const value = interesting(widths[field]!, s, r);
    setField(v, base + table[field]!, widths[field]!, value);
    return `${field}=0x${BigInt.asUintN(widths[field]! * 8, value).toString(16)}`;
  };
}

function inSectionsOf(
  types: number[],
  entry: number,
  table: Record<string, number>,
  widths: Fields,
): Mutation {
  return (m, v, s, r) => {
    const secs = s.sections.filter((x) => types.includes(x.type) && x.size >= entry);
    if (secs.length === 0) return MUTATIONS.flip!(m, v, s, r);
    const sec = pick(r, secs);
    const at = sec.offset + entry * Math.floor((r() * sec.size) / entry);
    return overwrite(table, widths, at)(m, v, s, r);
  };
}

const MUTATIONS: Record<string, Mutation> = {
  flip: (m, _v, _s, r) => {
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) m[Math.floor(r() * m.length)]! ^= 1 << Math.floor(r() * 8);
    return `${n} bits`;
  },
  run: (m, _v, _s, r) => {
    const at = Math.floor(r() * m.length);
    const n = 1 + Math.floor(r() * 16);
    for (let i = at; i < Math.min(m.length, at + n); i++) m[i] = Math.floor(r() * 256);
    return `${n} bytes at 0x${at.toString(16)}`;
  },
  ehdr: (m, v, s, r) => overwrite(EHDR, EHDR_W, 0)(m, v, s, r),
  shdr: (m, v, s, r) => overwrite(SHDR, SHDR_W, s.shoff + SHDR.SIZE * Math.floor(r() * s.shnum))(m, v, s, r),
  sym: (m, v, s, r) =>
    overwrite(SYM, SYM_W, (s.symtab?.offset ?? 0) + SYM.SIZE * Math.floor(r() * s.nsyms))(m, v, s, r),
  rela: inSectionsOf([SHT_RELA], RELA.SIZE, RELA, RELA_W),
  group: inSectionsOf([SHT_GROUP], 4, { entry: 0 }, { entry: 4 }),
  note: inSectionsOf([SHT_NOTE], NHDR.SIZE, NHDR, NHDR_W),
  xnum: (_m, v, s, r) => {
    // Extended numbering: the count and e_shstrndx moved into section 0, then maybe bent.
    v.setUint16(EHDR.shnum, 0, true);
    setField(v, s.shoff + SHDR.size, 8, r() < 0.5 ? BigInt(s.shnum) : interesting(8, s, r));
    if (r() < 0.5) {
      const shstrndx = v.getUint16(EHDR.shstrndx, true);
      v.setUint16(EHDR.shstrndx, 0xffff, true);
      setField(v, s.shoff + SHDR.link, 4, r() < 0.5 ? BigInt(shstrndx) : interesting(4, s, r));
    }
    return "extended numbering";
  },
};

test(`readElf() and writeElf() throw nothing but ElfError on ${CASES} mutated objects`, {
  timeout: 30 * 60_000,
}, (t) => {
  const all = seeds();
  const r = prng(SEED);
  const kinds = Object.keys(MUTATIONS);
  const outcomes = new Map<string, number>();
  const failures: string[] = [];
  const tally = (key: string): void => {
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  };
  for (let i = 0; i < CASES; i++) {
    const seed = all[i % all.length]!;
    const kind = kinds[Math.floor(i / all.length) % kinds.length]!;
    let m = seed.bytes.slice();
    let what: string;
    if (kind === "flip" && r() < 0.2) {
      m = m.subarray(0, Math.floor(r() * m.length));
      what = `truncated to ${m.length}`;
    } else {
      what = MUTATIONS[kind]!(m, new DataView(m.buffer, m.byteOffset, m.byteLength), seed, r);
    }
    const label = `case ${i} (${seed.name}, ${kind}: ${what})`;
    const start = performance.now();
    let stage = "read";
    try {
      const elf = readElf(m, seed.name);
      stage = "write";
      const out = writeElf(elf);
      if (out.length > 2 * m.length + 4096 * (elf.sections.length + 1))
        failures.push(`${label}: wrote ${out.length} bytes`);
      stage = "rewrite";
      for (const sec of elf.sections) if (sec.isRela) void sec.relocs.length; // decode: the encoder must agree
      if (!Buffer.from(writeElf(elf)).equals(Buffer.from(out)))
        failures.push(`${label}: decoded relocations wrote other bytes`);
      stage = "reread";
      const back = readElf(out, `${seed.name} (rewritten)`);
      // Unless the writer had to move locals before globals, the model must come back the same.
      const firstGlobal = elf.symbols.findIndex((s) => s.bind !== STB_LOCAL);
      const localsFirst =
        firstGlobal < 0 || elf.symbols.slice(firstGlobal).every((s) => s.bind !== STB_LOCAL);
      const diffs = localsFirst ? compareElf(elf, back, 2) : [];
      if (diffs.length > 0) failures.push(`${label}: the model changed: ${diffs.join("; ")}`);
      tally("read and written");
    } catch (e) {
      if (!(e instanceof ElfError) || stage === "reread" || stage === "rewrite") {
        failures.push(`${label}: ${stage}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      } else tally(`${stage}: ${e.code}`);
    }
    const ms = performance.now() - start;
    if (ms > SLOW_MS) failures.push(`${label}: took ${ms.toFixed(0)} ms`);
  }
  const summary = [...outcomes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
  t.diagnostic(
    `${CASES} cases over ${all.length} objects (seed 0x${SEED.toString(16)}): ${summary.join(", ")}`,
  );
  assert.equal(failures.length, 0, `${failures.length} cases failed:\n${failures.slice(0, 10).join("\n")}`);
});
