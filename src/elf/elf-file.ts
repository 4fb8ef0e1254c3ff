import {
  EM_X86_64,
  ET_REL,
  EV_CURRENT,
  SHF_GROUP,
  SHF_INFO_LINK,
  SHF_RELA_LIVEPATCH,
  SHT_NULL,
  SHT_RELA,
  SHT_STRTAB,
  SHT_SYMTAB,
  STB_LOCAL,
  STT_SECTION,
} from "./constants.js";
import { ElfError } from "./elf-error.js";
import { ElfReloc, type RelocInit } from "./elf-reloc.js";
import { ElfSection, type SectionInit } from "./elf-section.js";
import { ElfSymbol, type SymbolInit } from "./elf-symbol.js";
import { RELA, SYM } from "./layout.js";
import { LookupIndex } from "./lookup-index.js";
import { type RemoveOptions, removeSections, removeSymbols } from "./remove.js";

export interface ElfHeader {
  type: number; // ET_*
  machine: number; // EM_*
  version: number; // e_version
  osabi: number; // e_ident[EI_OSABI]
  abiVersion: number; // e_ident[EI_ABIVERSION]
  flags: number; // e_flags
  entry: bigint; // e_entry
}

/**
 * The registry that owns an object's sections (index 0: the null section) and the symbols of its
 * .symtab (index 0: the null symbol). Lookups are hash maps and per-section sorted arrays, built
 * on first use and kept right across changes made through this class and the objects' setters.
 * `find*` returns undefined on a miss, `lookup*` throws ELF_NOT_FOUND.
 */
export class ElfFile implements ElfHeader {
  path: string | undefined;
  type: number;
  machine: number;
  version: number;
  osabi: number;
  abiVersion: number;
  flags: number;
  entry: bigint;
  /** The SHT_SYMTAB section the symbols live in; its `link` is the symbol string table. */
  symtab: ElfSection | undefined;
  /** The section header string table (e_shstrndx). */
  shstrtab: ElfSection | undefined;
  #sections: ElfSection[] = [];
  #symbols: ElfSymbol[] = [];
  #sectionsRenumber = false;
  #symbolsAsRead = false;
  #symbolsRenumber = false;
  readonly #index = new LookupIndex(this);

  constructor(header: Partial<ElfHeader> = {}, path?: string) {
    this.path = path;
    this.type = header.type ?? ET_REL;
    this.machine = header.machine ?? EM_X86_64;
    this.version = header.version ?? EV_CURRENT;
    this.osabi = header.osabi ?? 0;
    this.abiVersion = header.abiVersion ?? 0;
    this.flags = header.flags ?? 0;
    this.entry = header.entry ?? 0n;
  }

  /** Sections in header-table order; change them with addSection()/removeSection(). */
  get sections(): readonly ElfSection[] {
    return this.#sections;
  }

  /** Symbols in .symtab order; change them with addSymbol()/removeSymbol(). */
  get symbols(): readonly ElfSymbol[] {
    return this.#symbols;
  }

  /** The symbol string table (.strtab). */
  get strtab(): ElfSection | undefined {
    return this.symtab?.link;
  }

  /**
   * @internal The reader hands over everything it made, in order; `asRead` when the symbols are
   * in the positions undecoded relocations refer to.
   */
  _load(sections: ElfSection[], symbols: ElfSymbol[], asRead = false): void {
    this.#sections = sections;
    this.#symbols = symbols;
    this.#symbolsAsRead = asRead;
    for (let i = 0; i < sections.length; i++) {
      sections[i]!.file = this;
      sections[i]!._index = i;
    }
    for (let i = 0; i < symbols.length; i++) {
      symbols[i]!.file = this;
      symbols[i]!._index = i;
    }
    this.#index.clear();
  }

  // ---- lookups -------------------------------------------------------------------------------

  /** The section at `index`; throws ELF_BAD_SECTION_INDEX when there is none. */
  section(index: number): ElfSection {
    const sec = this.#sections[index];
    if (sec === undefined) {
      throw new ElfError(
        "ELF_BAD_SECTION_INDEX",
        `Cannot find section ${index}: there are ${this.#sections.length}`,
        {
          file: this.path,
        },
      );
    }
    return sec;
  }

  /** The first section named `name`. */
  findSection(name: string): ElfSection | undefined {
    return this.#index.sections(name)[0];
  }

  /** Every section named `name` (names repeat across COMDAT groups), in table order. */
  findSections(name: string): readonly ElfSection[] {
    return this.#index.sections(name);
  }

  lookupSection(name: string): ElfSection {
    const sec = this.findSection(name);
    if (sec === undefined) {
      throw new ElfError("ELF_NOT_FOUND", `Cannot find section ${name}`, { file: this.path, section: name });
    }
    return sec;
  }

  /** The symbol at `index`; throws ELF_BAD_SYMBOL_INDEX when there is none. */
  symbol(index: number): ElfSymbol {
    const sym = this.#symbols[index];
    if (sym === undefined) {
      throw new ElfError(
        "ELF_BAD_SYMBOL_INDEX",
        `Cannot find symbol ${index}: there are ${this.#symbols.length}`,
        {
          file: this.path,
        },
      );
    }
    return sym;
  }

  /** The first symbol named `name` in table order (see findSymbols() for duplicate locals). */
  findSymbol(name: string): ElfSymbol | undefined {
    return this.#index.symbols(name)[0];
  }

  /** Every symbol named `name` in table order: static functions of the same name repeat. */
  findSymbols(name: string): readonly ElfSymbol[] {
    return this.#index.symbols(name);
  }

  lookupSymbol(name: string): ElfSymbol {
    const sym = this.findSymbol(name);
    if (sym === undefined) {
      throw new ElfError("ELF_NOT_FOUND", `Cannot find symbol ${name}`, { file: this.path, symbol: name });
    }
    return sym;
  }

  /** The symbols defined in `section` (its section symbol included), in table order. */
  symbolsIn(section: ElfSection): readonly ElfSymbol[] {
    return this.#index.symbolsIn(section);
  }

  /**
   * The function or object symbol whose extent contains `offset` in `section` (the innermost one
   * when symbols nest), by binary search.
   */
  symbolAt(section: ElfSection, offset: number): ElfSymbol | undefined {
    return this.#index.symbolAt(section, offset);
  }

  /** Every relocation against `symbol`, with the rela section it is in. Scans all relocations. */
  relocsTo(symbol: ElfSymbol): { rela: ElfSection; reloc: ElfReloc }[] {
    const out: { rela: ElfSection; reloc: ElfReloc }[] = [];
    for (const sec of this.#sections) {
      if (!sec.isRela) continue;
      for (const reloc of sec.relocs) if (reloc.symbol === symbol) out.push({ rela: sec, reloc });
    }
    return out;
  }

  // ---- changes -------------------------------------------------------------------------------

  /**
   * Appends a section to the header table. With `base`, a relocation section applies to it (and
   * becomes its `rela` unless it has one or this is a SHF_RELA_LIVEPATCH section).
   */
  addSection(init: SectionInit): ElfSection {
    if (init.link) this.#own(init.link, "link a section to");
    if (init.base) this.#own(init.base, "relocate");
    const sec = new ElfSection(init);
    sec.file = this;
    sec._index = this.#sections.length;
    this.#sections.push(sec);
    if (init.base) {
      sec.base = init.base;
      if (isOrdinaryRela(sec) && init.base.rela === undefined) init.base.rela = sec;
    }
    this.#index.sectionAdded(sec);
    return sec;
  }

  /**
   * Adds a symbol: a local one after the last local, a global one at the end, so the table stays
   * locals-first. Its section, if any, must belong to this file.
   */
  addSymbol(init: SymbolInit): ElfSymbol {
    if (init.section) this.#own(init.section, "define a symbol in");
    const sym = new ElfSymbol(init);
    sym.file = this;
    this.#symbolsAsRead = false;
    const syms = this.#symbols;
    let at = syms.length;
    if (sym.bind === STB_LOCAL) while (at > 1 && syms[at - 1]!.bind !== STB_LOCAL) at--;
    if (at === syms.length) {
      sym._index = at;
      syms.push(sym);
    } else {
      syms.splice(at, 0, sym);
      this.#symbolsRenumber = true;
    }
    this.#index.symbolAdded(sym, at === syms.length - 1);
    return sym;
  }

  /** Adds an STT_SECTION symbol for `section` unless it has one; returns it. */
  ensureSectionSymbol(section: ElfSection): ElfSymbol {
    if (section.sectionSymbol) return section.sectionSymbol;
    const sym = this.addSymbol({ name: "", type: STT_SECTION, section });
    section.sectionSymbol = sym;
    return sym;
  }

  /**
   * Adds a relocation to `base`, creating its `.rela<name>` section (in base's group, if any)
   * when it has none. The symbol must belong to this file.
   */
  addReloc(base: ElfSection, init: RelocInit): ElfReloc {
    this.#own(base, "relocate");
    this.#own(init.symbol, "relocate against");
    let rela = base.rela;
    if (rela === undefined) {
      if (this.symtab === undefined) this.#createSymtab();
      rela = this.addSection({
        name: `.rela${base.name}`,
        type: SHT_RELA,
        flags: SHF_INFO_LINK | (base.group ? SHF_GROUP : 0n),
        addralign: 8,
        entsize: RELA.SIZE,
        link: this.symtab,
        base,
      });
      if (base.group) {
        base.group.members.push(rela);
        rela.group = base.group;
      }
    }
    const reloc = new ElfReloc(init.offset, init.type, init.symbol, init.addend ?? 0n);
    rela.relocs.push(reloc);
    return reloc;
  }

  /** Removes a section; see removeSections(). */
  removeSection(section: ElfSection, options: RemoveOptions = {}): void {
    this.removeSections([section], options);
  }

  /**
   * Removes sections. Anything still referring to one of them (a symbol defined in it, a rela or
   * group section, an sh_link) makes this throw ELF_SECTION_IN_USE, unless `cascade` is set: then
   * the symbols defined in them go too, with the relocations against those symbols, their rela
   * sections, sections linked to them (SHF_LINK_ORDER) and groups left empty.
   */
  removeSections(sections: Iterable<ElfSection>, options: RemoveOptions = {}): void {
    const doomed = new Set<ElfSection>();
    for (const sec of sections) {
      this.#own(sec, "remove");
      if (sec === this.#sections[0])
        throw new ElfError("ELF_SECTION_IN_USE", "Cannot remove the null section");
      doomed.add(sec);
    }
    const { sections: keep, symbols } = removeSections(this, doomed, options);
    for (const sec of doomed) {
      sec.file = undefined;
      sec._index = -1;
    }
    this.#sections = keep;
    this.#sectionsRenumber = true;
    if (symbols.size > 0) this.#dropSymbols(symbols);
    this.#index.clear();
  }

  /** Removes a symbol; see removeSymbols(). */
  removeSymbol(symbol: ElfSymbol, options: RemoveOptions = {}): void {
    this.removeSymbols([symbol], options);
  }

  /**
   * Removes symbols. A relocation against one, or a group it signs, makes this throw
   * ELF_SYMBOL_IN_USE; with `cascade` the relocations go too (a group signature still throws).
   */
  removeSymbols(symbols: Iterable<ElfSymbol>, options: RemoveOptions = {}): void {
    const doomed = new Set<ElfSymbol>();
    for (const sym of symbols) {
      this.#own(sym, "remove");
      if (sym === this.#symbols[0]) throw new ElfError("ELF_SYMBOL_IN_USE", "Cannot remove the null symbol");
      doomed.add(sym);
    }
    removeSymbols(this, doomed, options);
    this.#dropSymbols(doomed);
    this.#index.clear();
  }

  // ---- bookkeeping (called by ElfSection/ElfSymbol setters) ----------------------------------

  /** @internal Every symbol is where readElf() put it: raw relocation bytes are still right. */
  get _symbolsAsRead(): boolean {
    return this.#symbolsAsRead;
  }

  /** @internal */
  _renumberSections(): void {
    if (!this.#sectionsRenumber) return;
    this.#sectionsRenumber = false;
    const secs = this.#sections;
    for (let i = 0; i < secs.length; i++) secs[i]!._index = i;
  }

  /** @internal */
  _renumberSymbols(): void {
    if (!this.#symbolsRenumber) return;
    this.#symbolsRenumber = false;
    const syms = this.#symbols;
    for (let i = 0; i < syms.length; i++) syms[i]!._index = i;
  }

  /** @internal */
  _sectionRenamed(sec: ElfSection, old: string): void {
    this.#index.sectionRenamed(sec, old);
  }

  /** @internal */
  _symbolRenamed(sym: ElfSymbol, old: string): void {
    this.#index.symbolRenamed(sym, old);
  }

  /** @internal */
  _symbolMoved(sym: ElfSymbol, old: ElfSection | undefined): void {
    this.#index.symbolMoved(sym, old);
  }

  /** @internal */
  _symbolReshaped(sym: ElfSymbol): void {
    this.#index.symbolReshaped(sym);
  }

  #dropSymbols(doomed: ReadonlySet<ElfSymbol>): void {
    for (const sym of doomed) {
      if (sym.section?.sectionSymbol === sym) sym.section.sectionSymbol = undefined;
      sym.file = undefined;
      sym._index = -1;
    }
    this.#symbols = this.#symbols.filter((s) => !doomed.has(s));
    this.#symbolsAsRead = false;
    this.#symbolsRenumber = true;
  }

  #own(obj: ElfSection | ElfSymbol, action: string): void {
    if (obj.file !== this) {
      const what = obj instanceof ElfSection ? `section ${obj.name}` : `symbol ${obj.name}`;
      throw new ElfError("ELF_NOT_OWNED", `Cannot ${action} ${what}: it is not part of this file`, {
        file: this.path,
      });
    }
  }

  #createSymtab(): void {
    this.symtab = this.addSection({ name: ".symtab", type: SHT_SYMTAB, addralign: 8, entsize: SYM.SIZE });
    this.symtab.link = this.addSection({ name: ".strtab", type: SHT_STRTAB });
    if (this.#symbols.length === 0) {
      const nul = new ElfSymbol({ name: "" });
      nul.file = this;
      nul._index = 0;
      this.#symbols.push(nul);
    }
  }
}

/** A relocation section the linker applies (not a .klp.rela section, which the livepatch core applies). */
export function isOrdinaryRela(sec: ElfSection): boolean {
  return sec.isRela && (sec.flags & SHF_RELA_LIVEPATCH) === 0n;
}

/** A new, empty relocatable object: the null section, .symtab with the null symbol, .strtab, .shstrtab. */
export function createElf(header: Partial<ElfHeader> = {}, path?: string): ElfFile {
  const file = new ElfFile(header, path);
  file._load([new ElfSection({ name: "", type: SHT_NULL, addralign: 0 })], [new ElfSymbol({ name: "" })]);
  file.symtab = file.addSection({ name: ".symtab", type: SHT_SYMTAB, addralign: 8, entsize: SYM.SIZE });
  file.symtab.link = file.addSection({ name: ".strtab", type: SHT_STRTAB });
  file.shstrtab = file.addSection({ name: ".shstrtab", type: SHT_STRTAB });
  return file;
}
