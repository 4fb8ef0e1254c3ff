import {
  SHT_GROUP,
  SHT_NOBITS,
  SHT_NOTE,
  SHT_NULL,
  SHT_REL,
  SHT_RELA,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
} from "./constants.js";
import type { ElfFile } from "./elf-file.js";
import { type ElfNote, noteAlignment, notesSize } from "./elf-note.js";
import type { ElfReloc } from "./elf-reloc.js";
import type { ElfSymbol } from "./elf-symbol.js";
import { GRP, REL, RELA, SHNDX_ENTRY, SYM } from "./layout.js";
import { decodeRelocs, type RawRelocs, rawRelocsSize } from "./relocs.js";

/** Shared by every section without contents: a zero-length array cannot be written to. */
const NO_BYTES = new Uint8Array(0);

export interface SectionInit {
  name: string;
  type: number; // SHT_*
  flags?: bigint; // SHF_*, default 0n
  addr?: bigint;
  addralign?: number; // default 1
  entsize?: number; // default 0
  /** Contents of a section that carries bytes (not NOBITS, RELA, GROUP, NOTE, SYMTAB). */
  data?: Uint8Array;
  /** Size of a NOBITS section. */
  size?: number;
  link?: ElfSection;
  info?: number;
  /** For a relocation section: the section it applies to (ElfFile.addSection sets the back-pointer). */
  base?: ElfSection;
}

/**
 * One section. What the contents are depends on the type:
 * - SHT_RELA / SHT_REL: `relocs`, applying to `base` (whose `rela` points back here);
 * - SHT_GROUP: `groupFlags`, `members` (whose `group` points back here) and `signature`;
 * - SHT_NOTE: `notes`;
 * - SHT_NOBITS: only `size`;
 * - the symbol table, its string table, .shstrtab and SHT_SYMTAB_SHNDX: derived from the model
 *   when written (`data` keeps the bytes as read, for reference only);
 * - everything else (PROGBITS, X86_64_UNWIND, unknown types): `data`, kept byte for byte.
 * sh_link and sh_info are resolved to objects wherever they name a section or symbol.
 */
export class ElfSection {
  /** The file that owns the section; undefined once removed. */
  file: ElfFile | undefined;
  type: number;
  flags: bigint;
  addr: bigint;
  addralign: number;
  entsize: number;
  /** Contents (a view into the input when read); empty for NOBITS and derived sections. */
  data: Uint8Array;
  /** The section sh_link names (symtab → strtab, rela/group → symtab, SHF_LINK_ORDER → target). */
  link: ElfSection | undefined;
  /** sh_info when it names neither a section nor a symbol (0 for most sections). */
  info: number;
  /** SHT_RELA/SHT_REL (or SHF_INFO_LINK): the section sh_info names, which the relocations apply to. */
  base: ElfSection | undefined;
  /**
   * On a section with relocations: its SHT_RELA (or SHT_REL) section, the first one; a
   * `.klp.rela.*` section (SHF_RELA_LIVEPATCH) applying to it is never this.
   */
  rela: ElfSection | undefined;
  /** @internal Relocations still in the input (see relocs.ts); undefined once decoded. */
  _raw: RawRelocs | undefined;
  #relocs: ElfReloc[];
  /** SHT_GROUP: the flag word (GRP_COMDAT), the member sections and the signature symbol. */
  groupFlags: number;
  members: ElfSection[];
  signature: ElfSymbol | undefined;
  /** On a group member: its SHT_GROUP section. */
  group: ElfSection | undefined;
  notes: ElfNote[];
  /** The STT_SECTION symbol of this section, if the symbol table has one. */
  sectionSymbol: ElfSymbol | undefined;
  /** @internal position in file.sections, kept by ElfFile. */
  _index: number;
  #name: string;
  #nobitsSize: number;

  constructor(init: SectionInit) {
    this.file = undefined;
    this._index = -1;
    this.#name = init.name;
    this.type = init.type;
    this.flags = init.flags ?? 0n;
    this.addr = init.addr ?? 0n;
    this.addralign = init.addralign ?? 1;
    this.entsize = init.entsize ?? 0;
    this.data = init.data ?? NO_BYTES;
    this.#nobitsSize = init.size ?? 0;
    this.link = init.link;
    this.info = init.info ?? 0;
    this.base = init.base;
    this.rela = undefined;
    this._raw = undefined;
    this.#relocs = [];
    this.groupFlags = 0;
    this.members = [];
    this.signature = undefined;
    this.group = undefined;
    this.notes = [];
    this.sectionSymbol = undefined;
  }

  /** SHT_RELA/SHT_REL: the relocations, in table order; edit the array freely. */
  get relocs(): ElfReloc[] {
    if (this._raw) {
      this.#relocs = decodeRelocs(this._raw);
      this._raw = undefined;
    }
    return this.#relocs;
  }
  set relocs(relocs: ElfReloc[]) {
    this._raw = undefined;
    this.#relocs = relocs;
  }

  /** Position in the section header table of the owning file; -1 once removed. */
  get index(): number {
    this.file?._renumberSections();
    return this._index;
  }

  get name(): string {
    return this.#name;
  }
  set name(name: string) {
    const old = this.#name;
    this.#name = name;
    this.file?._sectionRenamed(this, old);
  }

  /** sh_size as it will be written (the derived string tables: as read). */
  get size(): number {
    switch (this.type) {
      case SHT_NOBITS:
      case SHT_NULL:
        return this.#nobitsSize;
      case SHT_RELA: // relocations, or (ET_EXEC/ET_DYN) the bytes as read
        return this.data.length + (this._raw ? rawRelocsSize(this._raw) : this.#relocs.length * RELA.SIZE);
      case SHT_REL:
        return this.data.length + (this._raw ? rawRelocsSize(this._raw) : this.#relocs.length * REL.SIZE);
      case SHT_GROUP:
        return GRP.ENTRY * (1 + this.members.length);
      case SHT_NOTE:
        return notesSize(this.notes, noteAlignment(this.addralign));
      case SHT_SYMTAB:
        return this.file?.symtab === this ? this.file.symbols.length * SYM.SIZE : this.data.length;
      case SHT_SYMTAB_SHNDX:
        return this.file?.symtab && this.link === this.file.symtab
          ? this.file.symbols.length * SHNDX_ENTRY
          : this.data.length;
      default:
        return this.data.length;
    }
  }
  /** Only NOBITS (and NULL) sections have a size apart from their contents. */
  set size(size: number) {
    if (this.type !== SHT_NOBITS && this.type !== SHT_NULL) {
      throw new Error(`Cannot set the size of ${this.#name}: it has contents; set its data instead`);
    }
    this.#nobitsSize = size;
  }

  get isRela(): boolean {
    return this.type === SHT_RELA || this.type === SHT_REL;
  }
  get isGroup(): boolean {
    return this.type === SHT_GROUP;
  }
  get isNobits(): boolean {
    return this.type === SHT_NOBITS;
  }
}
