/**
 * readElf(): bytes → ElfFile. ET_REL is read completely (relocations and groups resolved to
 * objects); ET_EXEC and ET_DYN (vmlinux, modules after linking) are read for their sections,
 * symbols and notes, their relocation sections kept as bytes. Every index is checked before use:
 * a bad input gives an ElfError naming the file, the section and the offset.
 */
import type { ErrorLocation } from "../util/errors.js";
import { ElfInput, StringTableReader } from "./binary.js";
import {
  ET_REL,
  SHF_INFO_LINK,
  SHN_LORESERVE,
  SHN_UNDEF,
  SHN_XINDEX,
  SHT_GROUP,
  SHT_NOBITS,
  SHT_NOTE,
  SHT_NULL,
  SHT_RELA,
  SHT_STRTAB,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  STT_SECTION,
} from "./constants.js";
import { ElfError } from "./elf-error.js";
import { ElfFile, isOrdinaryRela } from "./elf-file.js";
import { noteAlignment, parseNotes } from "./elf-note.js";
import { ElfSection } from "./elf-section.js";
import { ElfSymbol } from "./elf-symbol.js";
import { GRP, REL, RELA, SHNDX_ENTRY, SYM } from "./layout.js";
import { type RawShdr, readHeaders } from "./read-headers.js";

const NO_BYTES = new Uint8Array(0);

/** Reads an ELF64 x86-64 object. `path` only names the file in errors. */
export function readElf(bytes: Uint8Array, path?: string): ElfFile {
  const input = new ElfInput(bytes, path);
  const { header, shdrs, shstrndx } = readHeaders(input);
  const file = new ElfFile(header, path);
  const ctx = new Reader(input, shdrs);

  ctx.makeSections(shstrndx);
  const symtab = ctx.findSymtab();
  const symbols = symtab ? ctx.readSymbols(symtab) : [new ElfSymbol({ name: "" })];
  for (let i = 1; i < shdrs.length; i++) {
    const sec = ctx.sections[i]!;
    const sh = shdrs[i]!;
    if (sec.isRela && header.type === ET_REL) ctx.readRelocs(i, symtab, symbols);
    else if (sec.type === SHT_GROUP) ctx.readGroup(i, symtab, symbols);
    else if (sec.type === SHT_NOTE) {
      sec.notes = parseNotes(input, sh.offset, sh.size, noteAlignment(sh.addralign), ctx.loc(i));
      sec.data = NO_BYTES;
    }
  }
  file.symtab = symtab;
  file.shstrtab = shstrndx > 0 ? ctx.sections[shstrndx] : undefined;
  // A copy: undecoded relocations index the symbols as read, whatever the file does later.
  file._load(ctx.sections, symbols.slice(), true);
  return file;
}

class Reader {
  readonly input: ElfInput;
  readonly shdrs: RawShdr[];
  readonly sections: ElfSection[] = [];

  constructor(input: ElfInput, shdrs: RawShdr[]) {
    this.input = input;
    this.shdrs = shdrs;
  }

  loc(index: number, offset?: number): ErrorLocation {
    const section = this.sections[index]?.name || `#${index}`;
    return this.input.loc(offset === undefined ? { section } : { section, offset });
  }

  fail(
    code: ConstructorParameters<typeof ElfError>[0],
    index: number,
    message: string,
    offset?: number,
  ): ElfError {
    return new ElfError(code, message, this.loc(index, offset));
  }

  /** Section objects with names and contents; sh_link resolved, sh_info per type. */
  makeSections(shstrndx: number): void {
    const names = this.sectionNames(shstrndx);
    for (let i = 0; i < this.shdrs.length; i++) this.sections.push(this.makeSection(i, names));
    for (let i = 1; i < this.shdrs.length; i++) this.linkSection(i);
  }

  /** The section name table e_shstrndx names (none when it is 0). */
  sectionNames(shstrndx: number): StringTableReader | undefined {
    if (shstrndx === 0) return undefined;
    const sh = this.shdrs[shstrndx]!;
    if (sh.type !== SHT_STRTAB) {
      throw this.fail(
        "ELF_BAD_SECTION_INDEX",
        shstrndx,
        `Cannot read section names: e_shstrndx ${shstrndx} is not a string table`,
      );
    }
    return new StringTableReader(this.input, sh.offset, sh.size, `section #${shstrndx} (.shstrtab)`);
  }

  /** Section `i` with its name and bytes (section 0 is the null section, whatever its header says). */
  makeSection(i: number, names: StringTableReader | undefined): ElfSection {
    const sh = this.shdrs[i]!;
    const name = i === 0 || !names ? "" : names.get(sh.name, `section #${i}`, { section: `#${i}` });
    const carriesBytes = i > 0 && sh.type !== SHT_NOBITS && sh.type !== SHT_NULL;
    return new ElfSection({
      name,
      type: i === 0 ? SHT_NULL : sh.type,
      flags: i === 0 ? 0n : sh.flags,
      addr: i === 0 ? 0n : sh.addr,
      addralign: i === 0 ? 0 : sh.addralign,
      entsize: i === 0 ? 0 : sh.entsize,
      data: carriesBytes ? this.input.bytes.subarray(sh.offset, sh.offset + sh.size) : undefined,
      size: carriesBytes || i === 0 ? 0 : sh.size,
    });
  }

  /** Section `i`'s sh_link and sh_info: the sections they name, or sh_info's value kept. */
  linkSection(i: number): void {
    const sh = this.shdrs[i]!;
    const sec = this.sections[i]!;
    if (sh.link !== 0) sec.link = this.sectionAt(sh.link, i, "sh_link");
    const infoIsSection = sec.isRela || (sh.flags & SHF_INFO_LINK) !== 0n;
    if (infoIsSection && sh.info !== 0) {
      sec.base = this.sectionAt(sh.info, i, "sh_info");
      if (isOrdinaryRela(sec) && sec.base.rela === undefined) sec.base.rela = sec;
    } else if (sec.type !== SHT_SYMTAB && sec.type !== SHT_GROUP) {
      sec.info = sh.info; // symtab and group sh_info are derived from the model when written
    }
  }

  sectionAt(index: number, from: number, field: string): ElfSection {
    const sec = index > 0 ? this.sections[index] : undefined;
    if (sec === undefined) {
      throw this.fail(
        "ELF_BAD_SECTION_INDEX",
        from,
        `Cannot resolve ${field}: section ${index} does not exist (${this.sections.length} sections)`,
      );
    }
    return sec;
  }

  findSymtab(): ElfSection | undefined {
    let symtab: ElfSection | undefined;
    for (let i = 1; i < this.sections.length; i++) {
      const sec = this.sections[i]!;
      if (sec.type !== SHT_SYMTAB) continue;
      if (symtab)
        throw this.fail("ELF_BAD_SYMTAB", i, `Cannot read symbols: a second symbol table ${sec.name}`);
      symtab = sec;
    }
    return symtab;
  }

  readSymbols(symtab: ElfSection): ElfSymbol[] {
    const { input, sections } = this;
    const si = this.sections.indexOf(symtab);
    const sh = this.shdrs[si]!;
    this.checkEntries(si, SYM.SIZE);
    const count = sh.size / SYM.SIZE;
    const strtab = symtab.link;
    if (strtab === undefined || strtab.type !== SHT_STRTAB) {
      throw this.fail(
        "ELF_BAD_SECTION_INDEX",
        si,
        `Cannot read symbol names: sh_link ${sh.link} is not a string table`,
      );
    }
    const strSh = this.shdrs[sections.indexOf(strtab)]!;
    const names = new StringTableReader(
      input,
      strSh.offset,
      strSh.size,
      strtab.name || "the symbol string table",
    );
    const xindex = this.findShndxTable(si, count);

    const symbols: ElfSymbol[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const at = sh.offset + i * SYM.SIZE;
      const info = input.u8(at + SYM.info);
      let shndx = input.u16(at + SYM.shndx);
      let section: ElfSection | undefined;
      if (shndx === SHN_XINDEX && xindex !== undefined) shndx = input.u32(xindex + i * SHNDX_ENTRY);
      else if (shndx === SHN_XINDEX) {
        throw this.fail(
          "ELF_BAD_SYMTAB",
          si,
          `Cannot read symbol ${i}: SHN_XINDEX without an SHT_SYMTAB_SHNDX table`,
          at - sh.offset,
        );
      } else if (shndx >= SHN_LORESERVE) shndx = -shndx; // reserved: kept below
      if (shndx > 0) {
        section = sections[shndx];
        if (section === undefined) {
          throw this.fail(
            "ELF_BAD_SECTION_INDEX",
            si,
            `Cannot read symbol ${i}: section ${shndx} does not exist`,
            at - sh.offset,
          );
        }
      }
      const sym = new ElfSymbol({
        name: names.get(input.u32(at + SYM.name), `symbol ${i}`, {
          section: symtab.name,
          offset: at - sh.offset,
        }),
        type: info & 0xf,
        bind: info >> 4,
        other: input.u8(at + SYM.other),
        section,
        shndx: shndx < 0 ? -shndx : SHN_UNDEF,
        value: input.u64(at + SYM.value),
        size: input.u64(at + SYM.size),
      });
      if (section && (info & 0xf) === STT_SECTION && section.sectionSymbol === undefined)
        section.sectionSymbol = sym;
      symbols[i] = sym;
    }
    return symbols;
  }

  /** The file offset of the SHT_SYMTAB_SHNDX table of the symbol table at `si`, if any. */
  findShndxTable(si: number, count: number): number | undefined {
    for (let i = 1; i < this.sections.length; i++) {
      const sh = this.shdrs[i]!;
      if (sh.type !== SHT_SYMTAB_SHNDX || sh.link !== si) continue;
      if (sh.entsize !== SHNDX_ENTRY) this.checkEntries(i, SHNDX_ENTRY); // throws ELF_BAD_ENTSIZE
      if (sh.size < count * SHNDX_ENTRY) {
        throw this.fail(
          "ELF_BAD_SYMTAB",
          i,
          `Cannot read extended section indexes: ${sh.size} bytes for ${count} symbols`,
        );
      }
      return sh.offset;
    }
    return undefined;
  }

  readRelocs(ri: number, symtab: ElfSection | undefined, symbols: ElfSymbol[]): void {
    const { input } = this;
    const sec = this.sections[ri]!;
    const sh = this.shdrs[ri]!;
    const rela = sec.type === SHT_RELA;
    const entry = rela ? RELA.SIZE : REL.SIZE;
    this.checkEntries(ri, entry);
    sec.data = NO_BYTES;
    const count = sh.size / entry;
    if (count === 0) return;
    const base = sec.base;
    if (base === undefined)
      throw this.fail(
        "ELF_BAD_RELOC",
        ri,
        "Cannot read relocations: sh_info names no section to apply them to",
      );
    if (symtab === undefined || sec.link !== symtab) {
      throw this.fail(
        "ELF_BAD_RELOC",
        ri,
        `Cannot read relocations: sh_link ${sh.link} is not the symbol table`,
      );
    }
    const limit = base.size;
    const view = input.view;
    // Check every entry now, so that a bad one is readElf()'s error; decode on first use.
    for (let i = 0, at = sh.offset; i < count; i++, at += entry) {
      const symIndex = view.getUint32(at + RELA.sym, true);
      if (symIndex >= symbols.length) {
        throw this.fail(
          "ELF_BAD_RELOC",
          ri,
          `Cannot read relocation ${i}: symbol ${symIndex} does not exist (${symbols.length} symbols)`,
          i * entry,
        );
      }
      // r_offset from its two halves: exact below 2^53, and anything above is past `limit` anyway.
      const offset =
        view.getUint32(at + RELA.offset, true) + view.getUint32(at + RELA.offset + 4, true) * 2 ** 32;
      if (offset >= limit) {
        throw this.fail(
          "ELF_BAD_RELOC",
          ri,
          `Cannot read relocation ${i}: offset 0x${offset.toString(16)} is outside ${base.name} (0x${limit.toString(16)} bytes)`,
          i * entry,
        );
      }
    }
    sec._raw = { view, start: sh.offset, count, rela, symbols };
  }

  readGroup(gi: number, symtab: ElfSection | undefined, symbols: ElfSymbol[]): void {
    const { input } = this;
    const sec = this.sections[gi]!;
    const sh = this.shdrs[gi]!;
    if (sh.size < GRP.ENTRY || sh.size % GRP.ENTRY !== 0) {
      throw this.fail(
        "ELF_BAD_GROUP",
        gi,
        `Cannot read the group: its size ${sh.size} is not a positive multiple of 4`,
      );
    }
    if (symtab === undefined || sec.link !== symtab) {
      throw this.fail(
        "ELF_BAD_GROUP",
        gi,
        `Cannot read the group: sh_link ${sh.link} is not the symbol table`,
      );
    }
    const signature = symbols[sh.info];
    if (signature === undefined) {
      throw this.fail(
        "ELF_BAD_SYMBOL_INDEX",
        gi,
        `Cannot read the group signature: symbol ${sh.info} does not exist`,
      );
    }
    sec.signature = signature;
    sec.groupFlags = input.u32(sh.offset + GRP.flags);
    const members: ElfSection[] = [];
    for (let at = GRP.ENTRY; at < sh.size; at += GRP.ENTRY) {
      const member = this.sectionAt(input.u32(sh.offset + at), gi, "a group member");
      member.group = sec;
      members.push(member);
    }
    sec.members = members;
    sec.data = NO_BYTES;
  }

  /** sh_entsize must be the record size and sh_size a multiple of it. */
  checkEntries(index: number, entry: number): void {
    const sh = this.shdrs[index]!;
    if (sh.entsize !== entry || sh.size % entry !== 0) {
      throw this.fail(
        "ELF_BAD_ENTSIZE",
        index,
        `Cannot read the entries: sh_entsize ${sh.entsize} and sh_size ${sh.size} do not fit ${entry}-byte records`,
      );
    }
  }
}
