import { SHN_UNDEF, STB_LOCAL, STB_WEAK, STT_FILE, STT_FUNC, STT_NOTYPE, STT_SECTION } from "./constants.js";
import type { ElfFile } from "./elf-file.js";
import type { ElfSection } from "./elf-section.js";

export interface SymbolInit {
  name: string;
  type?: number; // STT_*, default STT_NOTYPE
  bind?: number; // STB_*, default STB_LOCAL
  /** The whole st_other byte; visibility (STV_*) is its low two bits. Default 0. */
  other?: number;
  /** The section the symbol is defined in; leave it out for UNDEF/ABS/COMMON/LIVEPATCH symbols. */
  section?: ElfSection;
  /** The reserved st_shndx (SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_LIVEPATCH) when there is no section. */
  shndx?: number;
  value?: bigint;
  size?: bigint;
}

/**
 * One entry of .symtab. Setting `name`, `type`, `section`, `value` or `size` keeps the owning
 * file's lookups right. `index` is the position in `file.symbols` (0 is the null symbol).
 */
export class ElfSymbol {
  /** The file that owns the symbol; undefined once removed. */
  file: ElfFile | undefined;
  bind: number;
  other: number;
  /**
   * st_shndx when `section` is undefined: SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_LIVEPATCH or another
   * reserved value as read. Ignored while `section` is set (the writer uses the section's index).
   */
  shndx: number;
  /** @internal position in file.symbols, kept by ElfFile. */
  _index: number;
  #name: string;
  #type: number;
  #section: ElfSection | undefined;
  #value: bigint;
  #size: bigint;

  constructor(init: SymbolInit) {
    this.file = undefined;
    this._index = -1;
    this.#name = init.name;
    this.#type = init.type ?? STT_NOTYPE;
    this.bind = init.bind ?? STB_LOCAL;
    this.other = init.other ?? 0;
    this.#section = init.section;
    this.shndx = init.shndx ?? SHN_UNDEF;
    this.#value = init.value ?? 0n;
    this.#size = init.size ?? 0n;
  }

  /** Position in the symbol table of the owning file; -1 once removed. */
  get index(): number {
    this.file?._renumberSymbols();
    return this._index;
  }

  get name(): string {
    return this.#name;
  }
  set name(name: string) {
    const old = this.#name;
    this.#name = name;
    this.file?._symbolRenamed(this, old);
  }

  get type(): number {
    return this.#type;
  }
  set type(type: number) {
    this.#type = type;
    this.file?._symbolReshaped(this);
  }

  get section(): ElfSection | undefined {
    return this.#section;
  }
  set section(section: ElfSection | undefined) {
    const old = this.#section;
    this.#section = section;
    this.file?._symbolMoved(this, old);
  }

  get value(): bigint {
    return this.#value;
  }
  set value(value: bigint) {
    this.#value = value;
    this.file?._symbolReshaped(this);
  }

  get size(): bigint {
    return this.#size;
  }
  set size(size: bigint) {
    this.#size = size;
    this.file?._symbolReshaped(this);
  }

  /** STV_* from the low two bits of st_other. */
  get visibility(): number {
    return this.other & 3;
  }
  set visibility(visibility: number) {
    this.other = (this.other & ~3) | (visibility & 3);
  }

  get isLocal(): boolean {
    return this.bind === STB_LOCAL;
  }
  get isWeak(): boolean {
    return this.bind === STB_WEAK;
  }
  /** Neither in a section nor reserved: to be resolved by the linker. */
  get isUndefined(): boolean {
    return this.#section === undefined && this.shndx === SHN_UNDEF;
  }
  get isFunction(): boolean {
    return this.#type === STT_FUNC;
  }
  get isSectionSymbol(): boolean {
    return this.#type === STT_SECTION;
  }
  get isFileSymbol(): boolean {
    return this.#type === STT_FILE;
  }

  /** "name" or, for a section symbol without a name, the section's name (as readelf prints it). */
  get displayName(): string {
    if (this.#name === "" && this.#type === STT_SECTION && this.#section) return this.#section.name;
    return this.#name;
  }
}
