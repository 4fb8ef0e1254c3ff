/**
 * A function's code as an object file has it, for the run-pre check: its bytes, which of them a
 * relocation fills in (the linker or module loader writes those, so they say nothing about the
 * code), and the sites the build or the kernel may legitimately rewrite (site-kinds.ts), each
 * with the record that says so: static branches (a __jump_table entry's code field), ftrace call
 * sites (a relocation to __fentry__, or an __mcount_loc / __patchable_function_entries entry),
 * alternatives (.altinstructions), paravirt patch sites (.parainstructions, before 6.8), lock prefixes (.smp_locks), and the instructions objtool lists
 * only in its vmlinux.o pass (IBT kernels delay objtool to the link, so an object has no
 * .return_sites, .retpoline_sites, .static_call_sites or .ibt_endbr_seal of its own): found by
 * their relocation target (__x86_return_thunk, __x86_indirect_thunk_*, __SCT__*) and, for IBT,
 * by an endbr64 at the function's entry.
 */

import { isRuntimeConstSection } from "../diff/special/runtime-const.js";
import { type ElfFile, type ElfSection, type ElfSymbol, SHF_EXECINSTR } from "../elf/index.js";
import { relocWidth } from "../x86/reloc-width.js";
import { kindOfCallTarget, type SiteKind } from "./site-kinds.js";

export type { SiteKind } from "./site-kinds.js";

export interface Site {
  kind: SiteKind;
  /** The record that names the site, for the report: "__jump_table entry (key sched_smt_present)". */
  evidence: string;
  /** Bytes the site covers when not just its first instruction (an alternative's instrlen). */
  length?: number;
}

const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa];

export interface FunctionCode {
  name: string;
  /** The object (or module) file, for messages. */
  file: string;
  bytes: Uint8Array;
  /** 1 for every byte a relocation fills in. */
  linked: Uint8Array;
  /** Function-relative offset of each site. */
  sites: Map<number, Site>;
  weak: boolean;
}

const sitesCache = new WeakMap<ElfFile, Map<ElfSection, Map<number, Site>>>();

/** Where an entry's relocation points: (section, offset), for section and symbol relocations alike. */
function pointsAt(sym: ElfSymbol, addend: bigint): { section: ElfSection; offset: number } | undefined {
  if (!sym.section) return undefined;
  return { section: sym.section, offset: Number(sym.value + addend) };
}

type SiteRelocs = readonly { offset: number; symbol: ElfSymbol; addend: bigint }[];
type AddSite = (section: ElfSection, offset: number, site: Site) => void;

/** Every site of every section of `file`, indexed once per file. */
function fileSites(file: ElfFile): Map<ElfSection, Map<number, Site>> {
  let all = sitesCache.get(file);
  if (all) return all;
  const sites = new Map<ElfSection, Map<number, Site>>();
  const add: AddSite = (section, offset, site) => {
    const m = sites.get(section) ?? new Map<number, Site>();
    sites.set(section, m);
    if (!m.has(offset)) m.set(offset, site);
  };
  for (const sec of file.sections) {
    const base = sec.base;
    if (!base || !sec.relocs.length) continue;
    const reader =
      SITE_SECTIONS.get(base.name) ?? (isRuntimeConstSection(base.name) ? runtimeConstSites : undefined);
    if (reader) reader(base, sec.relocs, add);
    else if (base.flags & SHF_EXECINSTR) callSites(base, sec.relocs, add);
  }
  all = sites;
  sitesCache.set(file, all);
  return all;
}

/** An entry that is one pointer to a site of `kind` (every relocation of the section). */
function pointerSites(kind: SiteKind) {
  return (base: ElfSection, relocs: SiteRelocs, add: AddSite): void => {
    for (const r of relocs) {
      const at = pointsAt(r.symbol, r.addend);
      if (at) add(at.section, at.offset, { kind, evidence: `${base.name} entry` });
    }
  };
}

/** The sections whose entries point at sites, each with its reader. */
const SITE_SECTIONS = new Map<string, (base: ElfSection, relocs: SiteRelocs, add: AddSite) => void>([
  ["__jump_table", jumpTableSites],
  ["__mcount_loc", pointerSites("fentry")],
  ["__patchable_function_entries", pointerSites("fentry")],
  [".altinstructions", altSites],
  [".parainstructions", paravirtSites],
  [".smp_locks", pointerSites("smp-lock")],
]);

/**
 * runtime_ptr_<sym> / runtime_shift_<sym>: s32 entries pointing at the immediate vmlinux writes
 * at boot, the imm64 of `movabs $imm64, %reg` (REX.W B8+r: the instruction starts 2 bytes before)
 * or the imm8 of `shr $imm8, %r32` (C1 /5, with a REX.B prefix for r8d-r15d).
 */
function runtimeConstSites(base: ElfSection, relocs: SiteRelocs, add: AddSite): void {
  const evidence = `${base.name} entry`;
  for (const r of relocs) {
    const at = pointsAt(r.symbol, r.addend);
    if (!at) continue;
    const code = at.section.data;
    if (base.name.startsWith("runtime_ptr_"))
      add(at.section, at.offset - 2, { kind: "runtime-const", evidence });
    else if (code[at.offset - 2] === 0xc1) {
      const start = (code[at.offset - 3] ?? 0) >> 4 === 4 ? at.offset - 3 : at.offset - 2;
      add(at.section, start, { kind: "runtime-const", evidence });
    }
  }
}

/** struct jump_entry { s32 code; s32 target; long key; }: 16 bytes, code at 0, key at 8. */
function jumpTableSites(_base: ElfSection, relocs: SiteRelocs, add: AddSite): void {
  const keys = new Map<number, string>();
  for (const r of relocs) if (r.offset % 16 === 8) keys.set(r.offset - 8, r.symbol.name);
  for (const r of relocs) {
    if (r.offset % 16 !== 0) continue;
    const at = pointsAt(r.symbol, r.addend);
    const key = keys.get(r.offset);
    if (at)
      add(at.section, at.offset, {
        kind: "static-branch",
        evidence: `__jump_table entry${key ? ` (key ${key})` : ""}`,
      });
  }
}

/** struct paravirt_patch_site: a pointer (R_X86_64_64) at 0, type at 8, len at 9; 16 bytes. */
function paravirtSites(base: ElfSection, relocs: SiteRelocs, add: AddSite): void {
  for (const r of relocs) {
    const at = pointsAt(r.symbol, r.addend);
    const length = base.data[r.offset + 9] ?? 0;
    if (r.offset % 16 === 0 && at && length > 0)
      add(at.section, at.offset, { kind: "paravirt", evidence: ".parainstructions entry", length });
  }
}

/** Calls the kernel rewrites, found in code by their relocations: __fentry__, thunks, static calls. */
function callSites(base: ElfSection, relocs: SiteRelocs, add: AddSite): void {
  for (const r of relocs) {
    const name = r.symbol.name;
    if (r.offset < 1) continue;
    if (name === "__fentry__") {
      add(base, r.offset - 1, { kind: "fentry", evidence: "call __fentry__ (relocation)" });
      continue;
    }
    const kind = kindOfCallTarget(name);
    if (!kind) continue;
    const at = callOpcodeAt(base.data, r.offset);
    const op = base.data[r.offset - 1]!;
    if (at >= 0) add(base, at, { kind, evidence: `${op === 0xe8 ? "call" : "jmp"} ${name}` });
  }
}

/** The opcode's offset of a call/jmp rel32 (e8/e9) or jcc rel32 (0f 8x) whose field is at `field`; -1 if none. */
function callOpcodeAt(data: Uint8Array, field: number): number {
  const op = data[field - 1]!;
  if (op === 0xe8 || op === 0xe9) return field - 1;
  if (field >= 2 && data[field - 2] === 0x0f && (op & 0xf0) === 0x80) return field - 2;
  return -1;
}

/**
 * .altinstructions: struct alt_instr, two relocations an entry (instr_offset at 0, repl_offset at
 * 4), instrlen and replacementlen its last two bytes: 12 bytes before 6.3, 14 since (ft_flags).
 * The entry size is the section's size over its entries, so no kernel header is needed.
 */
function altSites(base: ElfSection, relocs: SiteRelocs, add: AddSite): void {
  const entries = relocs.length / 2;
  const size = entries > 0 ? base.data.length / entries : 0;
  if (size !== 12 && size !== 14) return;
  for (const r of relocs) {
    if (r.offset % size !== 0) continue;
    const at = pointsAt(r.symbol, r.addend);
    const length = base.data[r.offset + size - 2]!;
    if (at && length > 0)
      add(at.section, at.offset, { kind: "alternative", evidence: ".altinstructions entry", length });
  }
}

/** The code of function `sym` of `file` (an object or a module: anything with relocations). */
export function functionCode(file: ElfFile, sym: ElfSymbol): FunctionCode {
  const sec = sym.section;
  if (!sec) throw new Error(`${sym.name} has no section`);
  const start = Number(sym.value);
  const size = Number(sym.size);
  const bytes = sec.data.subarray(start, start + size);
  const linked = new Uint8Array(size);
  for (const r of sec.rela?.relocs ?? []) {
    const from = r.offset - start;
    const w = relocWidth(r.type);
    if (from + w <= 0 || from >= size) continue;
    linked.fill(1, Math.max(0, from), Math.min(size, from + w));
  }
  const sites = new Map<number, Site>();
  for (const [offset, site] of fileSites(file).get(sec) ?? []) {
    if (offset >= start && offset < start + size) sites.set(offset - start, site);
  }
  if (size >= 4 && ENDBR64.every((b, i) => bytes[i] === b) && !sites.has(0))
    sites.set(0, { kind: "endbr", evidence: "endbr64 at the function's entry" });
  return { name: sym.name, file: file.path ?? "the object", bytes, linked, sites, weak: sym.isWeak };
}
