/**
 * indexObject(): one object's sections classified and its functions and data objects as units
 * (symbol, section, byte range), built once per input and never changed afterwards.
 */
import {
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_MERGE,
  SHF_STRINGS,
  SHF_WRITE,
  SHT_GROUP,
  SHT_NOBITS,
  SHT_NULL,
  SHT_STRTAB,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  STT_FUNC,
  STT_OBJECT,
} from "../elf/index.js";
import { findRangeAt } from "../util/binary-search.js";
import {
  DIRECTIVE_SECTION_PREFIXES,
  FENTRY_SYMBOLS,
  IGNORED_SECTION_PREFIXES,
  IGNORED_SYMBOL_PREFIXES,
  INIT_SECTION_PREFIXES,
  MAX_CALL_PADDING,
} from "./policy.js";
import type { CodePieceKind, DescriptorKind, SpecialKind } from "./special/special-kind.js";
import {
  findCodePieceKind,
  findCompanionKind,
  findDescriptorKind,
  findSpecialKind,
} from "./special/table.js";

export type SectionKind =
  | "text" // executable code
  | "data" // writable data
  | "bss" // zero-initialized data
  | "rodata" // read-only data
  | "string" // mergeable string literals
  | "special" // a table the differ cuts entry by entry (special/table.ts)
  | "companion" // payload or parallel array of a special table
  | "pieces" // code snippets functions jump into, cut per function (code-pieces.ts)
  | "descriptors" // fixed-size descriptors code refers to, copied per reference (descriptor-copier.ts)
  | "init" // __init code or data
  | "ignored" // never compared nor copied (policy.ts)
  | "directive" // kpatch-macros.h directives (.kpatch_ts.*, kpatch's .kpatch.*): read by readDirectives, never compared
  | "meta" // symbol/string tables, relocations, groups
  | "unknown"; // allocated, not understood: refused if it matters

export interface SectionInfo {
  kind: SectionKind;
  /** For "ignored": why (from policy.ts). */
  why?: string;
  /** For "special" and "companion". */
  special?: SpecialKind;
  /** For "pieces". */
  pieces?: CodePieceKind;
  /** For "descriptors". */
  descriptors?: DescriptorKind;
}

/** A function or data object: its symbol and the bytes it owns in its section. */
export interface Unit {
  sym: ElfSymbol;
  section: ElfSection;
  /** First byte owned, the call padding before a function included. */
  start: number;
  /** One past the last byte owned. */
  end: number;
  /** True when the unit is the only one in its section (start 0, end the section size). */
  whole: boolean;
  /** Functions: the `.cold` children split out of it; data: empty. */
  children: Unit[];
  /** A `.cold` child: its parent function, once correlated by name. */
  parent: Unit | undefined;
}

export interface ObjectIndex {
  file: ElfFile;
  info: Map<ElfSection, SectionInfo>;
  functions: Unit[];
  objects: Unit[];
  unitOf: Map<ElfSymbol, Unit>;
  /** Units by section, sorted by start. */
  bySection: Map<ElfSection, Unit[]>;
}

export function isIgnoredSymbol(sym: ElfSymbol): boolean {
  return IGNORED_SYMBOL_PREFIXES.some((p) => sym.name.startsWith(p.prefix));
}

function isInitSection(name: string): boolean {
  return INIT_SECTION_PREFIXES.some((p) => name.startsWith(p));
}

function classifySection(sec: ElfSection): SectionInfo {
  const { name } = sec;
  if (sec.type === SHT_NULL || sec.isRela || sec.type === SHT_SYMTAB || sec.type === SHT_GROUP)
    return { kind: "meta" };
  if (sec.type === SHT_SYMTAB_SHNDX || (sec.type === SHT_STRTAB && !(sec.flags & SHF_ALLOC)))
    return { kind: "meta" };
  if (DIRECTIVE_SECTION_PREFIXES.some((p) => name.startsWith(p))) return { kind: "directive" };
  const ignored = IGNORED_SECTION_PREFIXES.find((p) => name.startsWith(p.prefix));
  if (ignored) return { kind: "ignored", why: ignored.why };
  const special = findSpecialKind(name);
  if (special) return { kind: "special", special };
  const companion = findCompanionKind(name);
  if (companion) return { kind: "companion", special: companion };
  const pieces = findCodePieceKind(name);
  if (pieces) return { kind: "pieces", pieces };
  const descriptors = findDescriptorKind(name);
  if (descriptors) return { kind: "descriptors", descriptors };
  if (isInitSection(name)) return { kind: "init" };
  if (!(sec.flags & SHF_ALLOC)) return { kind: "ignored", why: "not loaded (no SHF_ALLOC)" };
  if (sec.flags & SHF_EXECINSTR) return { kind: "text" };
  if (sec.type === SHT_NOBITS) return { kind: "bss" };
  if (sec.flags & SHF_MERGE && sec.flags & SHF_STRINGS) return { kind: "string" };
  if (isDataName(name)) return { kind: sec.flags & SHF_WRITE ? "data" : "rodata" };
  return { kind: "unknown" };
}

/** Compiler-made data sections (.data.x, .rodata.x, .bss.x, .tdata, ...) as opposed to kernel tables. */
function isDataName(name: string): boolean {
  return (
    /^\.(data|rodata|bss|tdata|tbss|sdata|sbss|ldata|lrodata|lbss|ref\.data|ref\.rodata)(\.|$)/.test(name) ||
    name === ".rodata"
  );
}

export function indexObject(file: ElfFile): ObjectIndex {
  const info = new Map<ElfSection, SectionInfo>();
  for (const sec of file.sections) info.set(sec, classifySection(sec));
  const index: ObjectIndex = {
    file,
    info,
    functions: [],
    objects: [],
    unitOf: new Map(),
    bySection: new Map(),
  };
  const candidates = new Map<ElfSection, ElfSymbol[]>();
  for (const sym of file.symbols) {
    const sec = sym.section;
    if (!sec || isIgnoredSymbol(sym)) continue;
    if (sym.type !== STT_FUNC && sym.type !== STT_OBJECT) continue;
    const kind = info.get(sec)?.kind;
    // Descriptors are not units: references to them resolve to the descriptor (reloc-target.ts).
    if (kind === "meta" || kind === "ignored" || kind === "directive" || kind === "descriptors") continue;
    const list = candidates.get(sec);
    if (list) list.push(sym);
    else candidates.set(sec, [sym]);
  }
  for (const [sec, syms] of candidates) {
    // Aliases (same value): the first in table order owns the bytes, the others map to it.
    syms.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.index - b.index));
    const units: Unit[] = [];
    const owners: ElfSymbol[] = [];
    for (const sym of syms) {
      const prev = owners[owners.length - 1];
      if (prev && prev.value === sym.value && prev.type === sym.type) {
        index.unitOf.set(sym, index.unitOf.get(prev)!);
        continue;
      }
      owners.push(sym);
      const unit = makeUnit(
        sec,
        sym,
        owners.length === 1 ? 0 : Number(owners[owners.length - 2]!.value + owners[owners.length - 2]!.size),
      );
      units.push(unit);
      index.unitOf.set(sym, unit);
      if (sym.type === STT_FUNC) index.functions.push(unit);
      else index.objects.push(unit);
    }
    if (units.length === 1) {
      const u = units[0]!;
      u.start = 0;
      u.end = Math.max(sec.size, u.end);
      u.whole = true;
    }
    index.bySection.set(sec, units);
  }
  linkColdChildren(index);
  return index;
}

function makeUnit(sec: ElfSection, sym: ElfSymbol, prevEnd: number): Unit {
  const value = Number(sym.value);
  let start = value;
  if (sym.type === STT_FUNC && sec.type !== SHT_NOBITS) {
    // The call padding (NOPs) before the entry belongs to the function.
    const data = sec.data;
    while (start > prevEnd && value - start < MAX_CALL_PADDING && data[start - 1] === 0x90) start--;
  }
  return {
    sym,
    section: sec,
    start,
    end: value + Number(sym.size),
    whole: false,
    children: [],
    parent: undefined,
  };
}

/** `foo.cold` (and `foo.part.0.cold`...) is the unlikely part of `foo`: make it a child. */
function linkColdChildren(index: ObjectIndex): void {
  const byName = new Map<string, Unit>();
  for (const u of index.functions) byName.set(u.sym.name, u);
  for (const u of index.functions) {
    const m = /^(.*)\.cold(\.\d+)?$/.exec(u.sym.name);
    if (!m) continue;
    const parent = byName.get(m[1]!);
    if (!parent) continue;
    u.parent = parent;
    parent.children.push(u);
  }
}

/** The unit whose range contains `offset` in `section`. */
export function findUnitAt(index: ObjectIndex, section: ElfSection, offset: number): Unit | undefined {
  const units = index.bySection.get(section);
  return units ? findRangeAt(units, offset) : undefined;
}

/** True when the function calls __fentry__ at its entry (after endbr64): ftrace can redirect it. */
export function hasFentryCall(unit: Unit): boolean {
  const entry = Number(unit.sym.value);
  const rela = unit.section.rela;
  if (!rela) return false;
  for (const r of rela.relocs) {
    if (r.offset >= entry && r.offset < entry + 16 && FENTRY_SYMBOLS.has(r.symbol.name)) return true;
  }
  return false;
}

const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa];

/** True when the function starts with endbr64: it may be the target of an indirect call. */
export function hasEndbr(unit: Unit): boolean {
  const at = Number(unit.sym.value);
  const d = unit.section.data;
  return ENDBR64.every((b, i) => d[at + i] === b);
}
