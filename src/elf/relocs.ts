/**
 * Relocations of a section read from a file stay as bytes until something asks for them:
 * vmlinux.o carries millions (5 million in .rela.debug_info alone) that most callers never look at.
 * readElf() checks every entry first (symbol index, offset), so errors still come from readElf();
 * ElfSection.relocs decodes on first use; writeElf() copies the bytes when the symbol indexes
 * they hold are still right.
 */
import { readInt64 } from "./binary.js";
import { ElfReloc } from "./elf-reloc.js";
import type { ElfSymbol } from "./elf-symbol.js";
import { REL, RELA } from "./layout.js";

export interface RawRelocs {
  view: DataView; // the whole input
  start: number; // file offset of the first entry
  count: number;
  rela: boolean; // Elf64_Rela (with addend) or Elf64_Rel
  /** The symbol table as read: the indexes in the entries are positions in it. */
  symbols: readonly ElfSymbol[];
}

export function rawRelocsSize(raw: RawRelocs): number {
  return raw.count * (raw.rela ? RELA.SIZE : REL.SIZE);
}

/** The entries' bytes, a view into the input. */
export function rawRelocsBytes(raw: RawRelocs): Uint8Array {
  return new Uint8Array(raw.view.buffer, raw.view.byteOffset + raw.start, rawRelocsSize(raw));
}

/** ElfReloc objects for entries readElf() has checked. */
export function decodeRelocs(raw: RawRelocs): ElfReloc[] {
  const { view, count, rela, symbols } = raw;
  const entry = rela ? RELA.SIZE : REL.SIZE;
  const relocs: ElfReloc[] = new Array(count);
  for (let i = 0, at = raw.start; i < count; i++, at += entry) {
    // r_offset was checked to be inside the section: its high half is 0 for any real section.
    const offset =
      view.getUint32(at + RELA.offset, true) + view.getUint32(at + RELA.offset + 4, true) * 2 ** 32;
    const symbol = symbols[view.getUint32(at + RELA.sym, true)]!;
    const addend = rela ? readInt64(view, at + RELA.addend) : 0n;
    relocs[i] = new ElfReloc(offset, view.getUint32(at + RELA.type, true), symbol, addend);
  }
  return relocs;
}

/** Relocation i of a section, decoded or not, without decoding the rest (for comparisons). */
export class RelocCursor {
  private readonly raw: RawRelocs | undefined;
  private readonly list: readonly ElfReloc[];
  private readonly entry: number;
  readonly count: number;

  constructor(sec: { _raw: RawRelocs | undefined; relocs: ElfReloc[] }) {
    this.raw = sec._raw;
    this.list = this.raw ? [] : sec.relocs;
    this.entry = this.raw?.rela === false ? REL.SIZE : RELA.SIZE;
    this.count = this.raw ? this.raw.count : this.list.length;
  }

  offset(i: number): number {
    const raw = this.raw;
    if (!raw) return this.list[i]!.offset;
    const at = raw.start + i * this.entry + RELA.offset;
    return raw.view.getUint32(at, true) + raw.view.getUint32(at + 4, true) * 2 ** 32;
  }

  type(i: number): number {
    const raw = this.raw;
    return raw ? raw.view.getUint32(raw.start + i * this.entry + RELA.type, true) : this.list[i]!.type;
  }

  symbol(i: number): ElfSymbol {
    const raw = this.raw;
    return raw
      ? raw.symbols[raw.view.getUint32(raw.start + i * this.entry + RELA.sym, true)]!
      : this.list[i]!.symbol;
  }

  addend(i: number): bigint {
    const raw = this.raw;
    if (!raw) return this.list[i]!.addend;
    return raw.rela ? readInt64(raw.view, raw.start + i * this.entry + RELA.addend) : 0n;
  }
}
