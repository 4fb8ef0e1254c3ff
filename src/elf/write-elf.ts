/**
 * writeElf(): ElfFile → bytes, for relocatable objects. The file is rebuilt from the model in two
 * passes: first every section's size (string tables laid out fresh, symbols ordered locals first),
 * then one zeroed buffer filled in place. Section indexes in symbols, groups and sh_link/sh_info
 * are the model's current ones; SHT_SYMTAB_SHNDX and extended numbering appear when needed.
 */
import {
  ELFCLASS64,
  ELFDATA2LSB,
  ELFMAG,
  ET_REL,
  EV_CURRENT,
  SHN_LORESERVE,
  SHN_XINDEX,
  SHT_GROUP,
  SHT_NOBITS,
  SHT_NOTE,
  SHT_NULL,
  SHT_REL,
  SHT_RELA,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  STB_LOCAL,
} from "./constants.js";
import { ElfError } from "./elf-error.js";
import type { ElfFile } from "./elf-file.js";
import { noteAlignment, notesSize, writeNotes } from "./elf-note.js";
import type { ElfSection } from "./elf-section.js";
import type { ElfSymbol } from "./elf-symbol.js";
import { EHDR, EI, GRP, REL, RELA, SHDR, SHNDX_ENTRY, SYM } from "./layout.js";
import { rawRelocsBytes, rawRelocsSize } from "./relocs.js";
import { StringTableBuilder } from "./string-table.js";

/**
 * File offsets are aligned to sh_addralign up to this much: enough for every alignment real
 * objects use for contents that matter to file readers, and no megabytes of padding for a
 * section that asks for 2 MiB (the linker aligns addresses, not file offsets, by sh_addralign).
 */
const MAX_FILE_ALIGN = 4096;

interface Layout {
  sec: ElfSection | undefined; // undefined: the SHT_SYMTAB_SHNDX section the writer adds
  offset: number;
  size: number; // bytes in the file
}

export function writeElf(file: ElfFile): Uint8Array {
  if (file.type !== ET_REL) {
    throw new ElfError(
      "ELF_BAD_TYPE",
      `Cannot write ${file.path ?? "the file"}: only relocatable (ET_REL) objects are written`,
      {
        file: file.path,
      },
    );
  }
  return new Writer(file).write();
}

class Writer {
  readonly file: ElfFile;
  readonly sections: readonly ElfSection[];
  readonly symbols: readonly ElfSymbol[];
  /** New symbol index by symbol, only when the model is not locals-first. */
  reordered: Map<ElfSymbol, number> | undefined;
  firstGlobal = 0;
  readonly tables = new Map<ElfSection, StringTableBuilder>();
  /** String table ids of the symbol names (output order) and section names. */
  symbolNames = new Int32Array(0);
  sectionNames = new Int32Array(0);
  shndxName = 0;
  shndxTable: ElfSection | undefined;
  addShndx = false;
  /** The output as i64s: storing a bigint there is several times faster than DataView.setBigInt64. */
  i64 = new BigInt64Array(0);
  out = Buffer.alloc(0);

  constructor(file: ElfFile) {
    this.file = file;
    file._renumberSections();
    file._renumberSymbols();
    this.sections = file.sections;
    this.symbols = this.orderSymbols(file.symbols);
  }

  fail(
    code: "ELF_NOT_OWNED" | "ELF_BAD_RELOC" | "ELF_BAD_STRING" | "ELF_BAD_SYMTAB",
    message: string,
    section?: string,
  ): ElfError {
    return new ElfError(code, `Cannot write ${this.file.path ?? "the file"}: ${message}`, {
      file: this.file.path,
      section,
    });
  }

  /** Locals first (sh_info is the first global); an order that already is stays as it is. */
  orderSymbols(symbols: readonly ElfSymbol[]): readonly ElfSymbol[] {
    let locals = 0;
    let sorted = true;
    for (const sym of symbols) {
      if (sym.bind === STB_LOCAL) {
        if (locals !== sym._index) sorted = false;
        locals++;
      }
    }
    this.firstGlobal = locals;
    if (sorted) return symbols;
    const order = [
      ...symbols.filter((s) => s.bind === STB_LOCAL),
      ...symbols.filter((s) => s.bind !== STB_LOCAL),
    ];
    this.reordered = new Map(order.map((s, i) => [s, i]));
    return order;
  }

  symbolIndex(sym: ElfSymbol, where: string): number {
    if (sym.file !== this.file)
      throw this.fail("ELF_NOT_OWNED", `${where} refers to symbol ${sym.name}, which is not in the file`);
    return this.reordered ? this.reordered.get(sym)! : sym._index;
  }

  sectionIndex(sec: ElfSection, where: string): number {
    if (sec.file !== this.file)
      throw this.fail("ELF_NOT_OWNED", `${where} refers to section ${sec.name}, which is not in the file`);
    return sec._index;
  }

  write(): Uint8Array {
    const { sections } = this;
    this.planStringTables();
    const count = sections.length + (this.addShndx ? 1 : 0);

    // Pass 1: sizes and offsets.
    const layout: Layout[] = [{ sec: sections[0], offset: 0, size: 0 }];
    let end = EHDR.SIZE;
    for (let i = 1; i < count; i++) {
      const sec = sections[i];
      const size = sec ? this.contentSize(sec) : this.symbols.length * SHNDX_ENTRY;
      const align = Math.min(Math.max(sec?.addralign ?? 4, 1), MAX_FILE_ALIGN);
      const offset = size > 0 ? Math.ceil(end / align) * align : end;
      layout.push({ sec, offset, size });
      end = offset + size;
    }
    const shoff = Math.ceil(end / 8) * 8;
    const buffer = new ArrayBuffer(shoff + count * SHDR.SIZE); // zeroed, and 8-aligned for i64
    const out = Buffer.from(buffer);
    this.out = out;
    const view = new DataView(buffer);
    this.i64 = new BigInt64Array(buffer, 0, buffer.byteLength >>> 3);

    // Pass 2: contents, then headers.
    for (let i = 1; i < count; i++) {
      const { sec, offset } = layout[i]!;
      if (sec) this.writeContents(sec, out, view, offset);
      else this.writeShndx(view, offset);
    }
    this.writeEhdr(out, view, shoff, count);
    for (let i = 0; i < count; i++) this.writeShdr(view, shoff + i * SHDR.SIZE, layout[i]!, i, count);
    return new Uint8Array(buffer);
  }

  planStringTables(): void {
    const { file, sections, symbols } = this;
    const symtab = file.symtab;
    if (symtab) this.sectionIndex(symtab, "the symbol table");
    else if (symbols.length > 1)
      throw this.fail("ELF_BAD_SYMTAB", "there are symbols but no symbol table section");

    for (const sec of sections) {
      if (sec.type === SHT_SYMTAB_SHNDX && symtab && sec.link === symtab) this.shndxTable = sec;
    }
    if (sections.length > SHN_LORESERVE && symtab && !this.shndxTable) {
      this.addShndx = symbols.some((s) => s.section !== undefined && s.section._index >= SHN_LORESERVE);
    }

    const strtab = symtab?.link;
    if (strtab) {
      const table = new StringTableBuilder();
      this.tables.set(strtab, table);
      this.symbolNames = Int32Array.from(symbols, (sym) => table.add(sym.name));
    } else if (symbols.some((s) => s.name !== ""))
      throw this.fail("ELF_BAD_STRING", "symbols have names but there is no symbol string table");

    const shstrtab = file.shstrtab;
    if (shstrtab) {
      this.sectionIndex(shstrtab, "e_shstrndx");
      const table = this.tables.get(shstrtab) ?? new StringTableBuilder();
      this.tables.set(shstrtab, table);
      this.sectionNames = Int32Array.from(sections, (sec) => table.add(sec.name));
      if (this.addShndx) this.shndxName = table.add(".symtab_shndx");
    } else if (sections.some((s) => s.name !== ""))
      throw this.fail("ELF_BAD_STRING", "sections have names but there is no section name table");
    for (const table of this.tables.values()) table.finish();
  }

  contentSize(sec: ElfSection): number {
    const table = this.tables.get(sec);
    if (table) return table.size;
    switch (sec.type) {
      case SHT_NOBITS:
      case SHT_NULL:
        return 0;
      case SHT_SYMTAB:
        return sec === this.file.symtab ? this.symbols.length * SYM.SIZE : sec.data.length;
      case SHT_SYMTAB_SHNDX:
        return sec === this.shndxTable ? this.symbols.length * SHNDX_ENTRY : sec.data.length;
      case SHT_RELA:
      case SHT_REL:
        if (sec._raw) return rawRelocsSize(sec._raw); // without decoding them
        return sec.relocs.length * (sec.type === SHT_RELA ? RELA.SIZE : REL.SIZE);
      case SHT_GROUP:
        return GRP.ENTRY * (1 + sec.members.length);
      case SHT_NOTE:
        return notesSize(sec.notes, noteAlignment(sec.addralign));
      default:
        return sec.data.length;
    }
  }

  writeContents(sec: ElfSection, out: Buffer, view: DataView, at: number): void {
    const table = this.tables.get(sec);
    if (table) table.write(out, at);
    else if (sec.type === SHT_NOBITS || sec.type === SHT_NULL) {
      // no bytes in the file
    } else if (sec.type === SHT_SYMTAB && sec === this.file.symtab) this.writeSymbols(view, at);
    else if (sec.type === SHT_SYMTAB_SHNDX && sec === this.shndxTable) this.writeShndx(view, at);
    else if (sec.isRela) this.writeRelocs(sec, view, at);
    else if (sec.type === SHT_GROUP) {
      view.setUint32(at + GRP.flags, sec.groupFlags, true);
      for (let i = 0; i < sec.members.length; i++) {
        const index = this.sectionIndex(sec.members[i]!, `group ${sec.name}`);
        view.setUint32(at + GRP.ENTRY * (i + 1), index, true);
      }
    } else if (sec.type === SHT_NOTE) writeNotes(out, view, at, sec.notes, noteAlignment(sec.addralign));
    else out.set(sec.data, at);
  }

  writeSymbols(view: DataView, start: number): void {
    const names = this.tables.get(this.file.symtab!.link!);
    const syms = this.symbols;
    for (let i = 0; i < syms.length; i++) {
      const sym = syms[i]!;
      const at = start + i * SYM.SIZE;
      let shndx = sym.shndx;
      if (sym.section) {
        shndx = this.sectionIndex(sym.section, `symbol ${sym.name}`);
        if (shndx >= SHN_LORESERVE) shndx = SHN_XINDEX;
      }
      if (names) view.setUint32(at + SYM.name, names.offsetOf(this.symbolNames[i]!), true);
      view.setUint8(at + SYM.info, ((sym.bind & 0xf) << 4) | (sym.type & 0xf));
      view.setUint8(at + SYM.other, sym.other & 0xff);
      view.setUint16(at + SYM.shndx, shndx, true);
      view.setBigUint64(at + SYM.value, BigInt.asUintN(64, sym.value), true);
      view.setBigUint64(at + SYM.size, BigInt.asUintN(64, sym.size), true);
    }
  }

  /** One u32 per symbol: the section index where st_shndx says SHN_XINDEX, else 0. */
  writeShndx(view: DataView, start: number): void {
    const syms = this.symbols;
    for (let i = 0; i < syms.length; i++) {
      const sec = syms[i]!.section;
      if (sec && sec._index >= SHN_LORESERVE) view.setUint32(start + i * SHNDX_ENTRY, sec._index, true);
    }
  }

  writeRelocs(sec: ElfSection, view: DataView, start: number): void {
    const raw = sec._raw;
    if (raw && !this.reordered && this.file._symbolsAsRead) {
      this.out.set(rawRelocsBytes(raw), start); // untouched, and the symbol indexes still hold
      return;
    }
    const rela = sec.type === SHT_RELA;
    const entry = rela ? RELA.SIZE : REL.SIZE;
    const relocs = sec.relocs;
    const file = this.file;
    const reordered = this.reordered;
    const i64 = (start & 7) === 0 ? this.i64 : undefined;
    for (let i = 0, at = start; i < relocs.length; i++, at += entry) {
      const r = relocs[i]!;
      const sym = r.symbol;
      if (sym.file !== file) this.symbolIndex(sym, `a relocation in ${sec.name}`); // throws
      view.setUint32(at + RELA.offset, r.offset >>> 0, true);
      if (r.offset >= 2 ** 32) view.setUint32(at + RELA.offset + 4, Math.floor(r.offset / 2 ** 32), true);
      view.setUint32(at + RELA.type, r.type, true);
      view.setUint32(at + RELA.sym, reordered ? reordered.get(sym)! : sym._index, true);
      if (!rela) continue;
      if (i64) i64[(at + RELA.addend) / 8] = r.addend;
      else view.setBigInt64(at + RELA.addend, r.addend, true);
    }
  }

  writeEhdr(out: Buffer, view: DataView, shoff: number, count: number): void {
    const { file } = this;
    out.set(ELFMAG, EHDR.ident);
    out[EI.CLASS] = ELFCLASS64;
    out[EI.DATA] = ELFDATA2LSB;
    out[EI.VERSION] = EV_CURRENT;
    out[EI.OSABI] = file.osabi;
    out[EI.ABIVERSION] = file.abiVersion;
    view.setUint16(EHDR.type, ET_REL, true);
    view.setUint16(EHDR.machine, file.machine, true);
    view.setUint32(EHDR.version, file.version, true);
    view.setBigUint64(EHDR.entry, BigInt.asUintN(64, file.entry), true);
    view.setBigUint64(EHDR.shoff, BigInt(shoff), true);
    view.setUint32(EHDR.flags, file.flags, true);
    view.setUint16(EHDR.ehsize, EHDR.SIZE, true);
    view.setUint16(EHDR.shentsize, SHDR.SIZE, true);
    view.setUint16(EHDR.shnum, count >= SHN_LORESERVE ? 0 : count, true);
    const shstrndx = file.shstrtab ? file.shstrtab._index : 0;
    view.setUint16(EHDR.shstrndx, shstrndx >= SHN_LORESERVE ? SHN_XINDEX : shstrndx, true);
  }

  writeShdr(view: DataView, at: number, entry: Layout, index: number, count: number): void {
    const sec = entry.sec;
    if (index === 0) {
      // Extended numbering lives in section 0: the count in sh_size, e_shstrndx in sh_link.
      const shstrndx = this.file.shstrtab ? this.file.shstrtab._index : 0;
      if (count >= SHN_LORESERVE) view.setBigUint64(at + SHDR.size, BigInt(count), true);
      if (shstrndx >= SHN_LORESERVE) view.setUint32(at + SHDR.link, shstrndx, true);
      return;
    }
    const names = this.file.shstrtab ? this.tables.get(this.file.shstrtab) : undefined;
    const symtab = this.file.symtab;
    if (sec === undefined) {
      view.setUint32(at + SHDR.name, names ? names.offsetOf(this.shndxName) : 0, true);
      view.setUint32(at + SHDR.type, SHT_SYMTAB_SHNDX, true);
      view.setBigUint64(at + SHDR.offset, BigInt(entry.offset), true);
      view.setBigUint64(at + SHDR.size, BigInt(entry.size), true);
      view.setUint32(at + SHDR.link, symtab!._index, true);
      view.setBigUint64(at + SHDR.addralign, 4n, true);
      view.setBigUint64(at + SHDR.entsize, BigInt(SHNDX_ENTRY), true);
      return;
    }
    let entsize = sec.entsize;
    let info = sec.info;
    if (sec.type === SHT_SYMTAB && sec === symtab) {
      entsize = SYM.SIZE;
      info = this.firstGlobal;
    } else if (sec.type === SHT_SYMTAB_SHNDX && sec === this.shndxTable) entsize = SHNDX_ENTRY;
    else if (sec.type === SHT_GROUP)
      info = sec.signature ? this.symbolIndex(sec.signature, `group ${sec.name}`) : 0;
    else if (sec.isRela) entsize = sec.type === SHT_RELA ? RELA.SIZE : REL.SIZE;
    if (sec.base) info = this.sectionIndex(sec.base, `section ${sec.name}`);
    else if (sec.isRela && sec.relocs.length > 0)
      throw this.fail("ELF_BAD_RELOC", `${sec.name} applies to no section`, sec.name);
    const link = sec.link ? this.sectionIndex(sec.link, `section ${sec.name}`) : 0;
    const size = sec.type === SHT_NOBITS || sec.type === SHT_NULL ? sec.size : entry.size;

    view.setUint32(at + SHDR.name, names ? names.offsetOf(this.sectionNames[index]!) : 0, true);
    view.setUint32(at + SHDR.type, sec.type, true);
    view.setBigUint64(at + SHDR.flags, BigInt.asUintN(64, sec.flags), true);
    view.setBigUint64(at + SHDR.addr, BigInt.asUintN(64, sec.addr), true);
    view.setBigUint64(at + SHDR.offset, BigInt(entry.offset), true);
    view.setBigUint64(at + SHDR.size, BigInt(size), true);
    view.setUint32(at + SHDR.link, link, true);
    view.setUint32(at + SHDR.info, info, true);
    view.setBigUint64(at + SHDR.addralign, BigInt(sec.addralign), true);
    view.setBigUint64(at + SHDR.entsize, BigInt(entsize), true);
  }
}
