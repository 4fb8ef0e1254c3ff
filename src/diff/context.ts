/**
 * The differ's state: the two indexed inputs (never modified) and the side tables the phases
 * fill in order: twins (correlateSymbols), directives (readDirectives), status and reasons
 * (markChanged*, applyDirectives), included units and sections (includeDependencies).
 */
import type { ElfFile, ElfReloc, ElfSection, ElfSymbol } from "../elf/index.js";
import { lowerBound } from "../util/binary-search.js";
import { Directives } from "./directives.js";
import type { ExportTable } from "./export-table.js";
import { indexObject, type ObjectIndex, type Unit } from "./object-index.js";
import type { EntrySizes } from "./special/special-kind.js";
import type { TargetSymbols } from "./target-symbols.js";

export interface DiffOptions {
  /** The object the functions live in: "vmlinux" (default) or a module name. */
  target?: string;
  /** The target's symbol table (vmlinux, a .ko, any ELF, or a System.map); default: ORIG's own. */
  symbols?: TargetSymbols;
  /** Exported symbols (Module.symvers); without it every undefined global is taken as exported. */
  exports?: ExportTable;
  /** Special-section entry sizes of the target kernel. */
  entrySizes?: EntrySizes;
}

export type UnitStatus = "same" | "changed" | "new";

/** Where and how a function first differs from its original. */
export interface ChangeWhy {
  /** Offset from the function symbol (negative inside the call padding). */
  offset: number;
  /** The patched instruction there (or a description when it is not an instruction difference). */
  instruction: string;
  /** The original instruction there, when both decode. */
  originalInstruction?: string;
  detail: string;
}

export class DiffContext {
  readonly orig: ObjectIndex;
  readonly patched: ObjectIndex;
  readonly options: DiffOptions;
  readonly target: string;
  /** Original ↔ patched symbol, both directions (units, section symbols, undefined symbols). */
  readonly twins = new Map<ElfSymbol, ElfSymbol>();
  /** Original ↔ patched section, both directions. */
  readonly sectionTwins = new Map<ElfSection, ElfSection>();
  /** Status of every patched unit (functions and data objects). */
  readonly status = new Map<Unit, UnitStatus>();
  readonly why = new Map<Unit, ChangeWhy>();
  /**
   * Changed functions without an ftrace hook that the patch carries but does not redirect: their
   * callers (listed) are patched instead (reachThroughCallers).
   */
  readonly carried = new Map<Unit, string[]>();
  /**
   * Unchanged locals the output carries a copy of, and why: the target has several symbols of
   * the name and which is ours cannot be told (copy-ambiguous-locals.ts).
   */
  readonly copied = new Map<Unit, string>();
  /** Patched units that go into the output. */
  readonly included = new Set<Unit>();
  /** Patched sections copied whole (string literals, anonymous read-only data). */
  readonly includedSections = new Set<ElfSection>();
  /** Sections and why they were ignored, for the report. */
  readonly ignored = new Map<string, string>();
  /** The patch author's kpatch-macros.h directives (readDirectives). */
  readonly directives = new Directives();
  /** Functions named by KPATCH_FORCE_UNSAFE and what forcing did, for the report. */
  readonly forced = new Map<string, string>();
  readonly warnings: string[] = [];
  /** What the patched code does differently besides the change, for the module's info (a silenced tracepoint). */
  readonly notes = new Set<string>();
  #sortedRelocs = new Map<ElfSection, ElfReloc[]>();
  #sameBytes = new Map<ElfSection, boolean>();

  constructor(orig: ElfFile, patched: ElfFile, options: DiffOptions = {}) {
    this.orig = indexObject(orig);
    this.patched = indexObject(patched);
    this.options = options;
    this.target = options.target ?? "vmlinux";
  }

  twinOf(sym: ElfSymbol): ElfSymbol | undefined {
    return this.twins.get(sym);
  }

  setTwins(o: ElfSymbol, p: ElfSymbol): void {
    this.twins.set(o, p);
    this.twins.set(p, o);
  }

  setSectionTwins(o: ElfSection, p: ElfSection): void {
    this.sectionTwins.set(o, p);
    this.sectionTwins.set(p, o);
  }

  indexOf(sym: ElfSymbol): ObjectIndex {
    return sym.file === this.orig.file ? this.orig : this.patched;
  }

  /** The relocations applying to `section`, sorted by offset (cached). */
  relocsOf(section: ElfSection): readonly ElfReloc[] {
    let list = this.#sortedRelocs.get(section);
    if (list === undefined) {
      list = section.rela ? [...section.rela.relocs].sort((a, b) => a.offset - b.offset) : [];
      this.#sortedRelocs.set(section, list);
    }
    return list;
  }

  /** The relocations inside [start, end) of `section`, sorted by offset. */
  relocsIn(section: ElfSection, start: number, end: number): readonly ElfReloc[] {
    const all = this.relocsOf(section);
    const from = lowerBound(all, start, (r) => r.offset);
    const to = lowerBound(all, end, (r) => r.offset);
    return from === 0 && to === all.length ? all : all.slice(from, to);
  }

  /** True when twin sections `o` and `p` hold the same bytes (cached: relocations ask often). */
  sameBytes(o: ElfSection, p: ElfSection): boolean {
    let same = this.#sameBytes.get(o);
    if (same === undefined) {
      const a = o.data;
      const b = p.data;
      same =
        o.size === p.size &&
        a.length === b.length &&
        Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
      this.#sameBytes.set(o, same);
    }
    return same;
  }

  warn(message: string): void {
    this.warnings.push(message);
  }

  /** The patched functions to redirect: changed, not a `.cold` part, not carried. */
  changedFunctions(): Unit[] {
    return this.patched.functions.filter(
      (u) => this.status.get(u) === "changed" && !u.parent && !this.carried.has(u),
    );
  }

  newFunctions(): Unit[] {
    return this.patched.functions.filter((u) => this.status.get(u) === "new" && !u.parent);
  }
}
