/**
 * The lookups of an ElfFile: sections and symbols by name, symbols by section, and per-section
 * sorted extents for symbolAt(). Each is built on first use and then kept right by the change
 * notifications ElfFile forwards (adds, renames, moves), or dropped and rebuilt later.
 */
import type { ElfSection } from "./elf-section.js";
import type { ElfSymbol } from "./elf-symbol.js";
import { type Multi, multiAdd, multiAll, multiDelete } from "./multi-map.js";
import { SymbolRanges } from "./symbol-ranges.js";

export interface IndexedFile {
  readonly sections: readonly ElfSection[];
  readonly symbols: readonly ElfSymbol[];
  _renumberSymbols(): void;
}

export class LookupIndex {
  readonly #file: IndexedFile;
  #sectionsByName: Multi<ElfSection> | undefined;
  #symbolsByName: Multi<ElfSymbol> | undefined;
  #bySection: Map<ElfSection, ElfSymbol[]> | undefined;
  #ranges = new Map<ElfSection, SymbolRanges>();
  /** Sections whose #bySection list may be out of table order. */
  #unsorted = new Set<ElfSection>();

  constructor(file: IndexedFile) {
    this.#file = file;
  }

  sections(name: string): readonly ElfSection[] {
    if (this.#sectionsByName === undefined) {
      const map: Multi<ElfSection> = new Map();
      const secs = this.#file.sections;
      for (let i = 1; i < secs.length; i++) multiAdd(map, secs[i]!.name, secs[i]!);
      this.#sectionsByName = map;
    }
    return multiAll(this.#sectionsByName, name);
  }

  symbols(name: string): readonly ElfSymbol[] {
    if (this.#symbolsByName === undefined) {
      const map: Multi<ElfSymbol> = new Map();
      const syms = this.#file.symbols;
      for (let i = 1; i < syms.length; i++) multiAdd(map, syms[i]!.name, syms[i]!);
      this.#symbolsByName = map;
    }
    return multiAll(this.#symbolsByName, name);
  }

  symbolsIn(section: ElfSection): readonly ElfSymbol[] {
    const list = this.#symbolsBySection().get(section);
    if (list === undefined) return [];
    if (this.#unsorted.delete(section)) {
      this.#file._renumberSymbols();
      list.sort((a, b) => a._index - b._index);
    }
    return list;
  }

  symbolAt(section: ElfSection, offset: number): ElfSymbol | undefined {
    let ranges = this.#ranges.get(section);
    if (ranges === undefined) {
      this.#file._renumberSymbols();
      ranges = new SymbolRanges(this.symbolsIn(section), section.addr);
      this.#ranges.set(section, ranges);
    }
    return ranges.find(offset);
  }

  // ---- change notifications ------------------------------------------------------------------

  sectionAdded(sec: ElfSection): void {
    if (this.#sectionsByName) multiAdd(this.#sectionsByName, sec.name, sec);
  }

  /** `last`: appended at the end of the table (else inserted before existing symbols). */
  symbolAdded(sym: ElfSymbol, last: boolean): void {
    if (this.#symbolsByName) {
      // An insert before existing namesakes would break table order among them: rebuild later.
      if (!last && this.#symbolsByName.has(sym.name)) this.#symbolsByName = undefined;
      else multiAdd(this.#symbolsByName, sym.name, sym);
    }
    if (sym.section) this.symbolMoved(sym, undefined);
  }

  sectionRenamed(sec: ElfSection, old: string): void {
    if (!this.#sectionsByName) return;
    multiDelete(this.#sectionsByName, old, sec);
    if (multiAll(this.#sectionsByName, sec.name).length === 0) this.#sectionsByName.set(sec.name, sec);
    else this.#sectionsByName = undefined; // keep table order among duplicates: rebuild on next use
  }

  symbolRenamed(sym: ElfSymbol, old: string): void {
    if (!this.#symbolsByName) return;
    multiDelete(this.#symbolsByName, old, sym);
    if (multiAll(this.#symbolsByName, sym.name).length === 0) this.#symbolsByName.set(sym.name, sym);
    else this.#symbolsByName = undefined; // keep table order among duplicates: rebuild on next use
  }

  symbolMoved(sym: ElfSymbol, old: ElfSection | undefined): void {
    const by = this.#bySection;
    if (by) {
      const oldList = old && by.get(old);
      if (old && oldList) {
        by.set(
          old,
          oldList.filter((s) => s !== sym),
        );
      }
      if (sym.section) {
        const list = by.get(sym.section);
        if (list) {
          list.push(sym);
          this.#unsorted.add(sym.section);
        } else by.set(sym.section, [sym]);
      }
    }
    if (old) this.#ranges.delete(old);
    if (sym.section) this.#ranges.delete(sym.section);
  }

  symbolReshaped(sym: ElfSymbol): void {
    if (sym.section) this.#ranges.delete(sym.section);
  }

  /** After removals: everything is rebuilt on next use. */
  clear(): void {
    this.#sectionsByName = undefined;
    this.#symbolsByName = undefined;
    this.#bySection = undefined;
    this.#unsorted.clear();
    this.#ranges.clear();
  }

  #symbolsBySection(): Map<ElfSection, ElfSymbol[]> {
    if (this.#bySection) return this.#bySection;
    const map = new Map<ElfSection, ElfSymbol[]>();
    for (const sym of this.#file.symbols) {
      const sec = sym.section;
      if (sec === undefined) continue;
      const list = map.get(sec);
      if (list) list.push(sym);
      else map.set(sec, [sym]);
    }
    this.#bySection = map;
    return map;
  }
}
