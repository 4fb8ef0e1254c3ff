/**
 * The ELF header and the section header table, checked field by field: class, byte order,
 * machine and type first (a 32-bit or big-endian file gets its own error, not a misread), then
 * the table's extent, with extended numbering (e_shnum 0, e_shstrndx SHN_XINDEX) from section 0.
 */
import { type ElfInput, toNumber } from "./binary.js";
import {
  ELFCLASS32,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFDATA2MSB,
  ELFMAG,
  EM_X86_64,
  ET_DYN,
  ET_EXEC,
  ET_REL,
  EV_CURRENT,
  SHN_XINDEX,
  SHT_NOBITS,
  SHT_NULL,
} from "./constants.js";
import { ElfError } from "./elf-error.js";
import type { ElfHeader } from "./elf-file.js";
import { EHDR, EI, SHDR } from "./layout.js";

export interface RawShdr {
  name: number;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
}

export interface RawHeaders {
  header: ElfHeader;
  shdrs: RawShdr[];
  shstrndx: number;
}

export function readHeaders(input: ElfInput): RawHeaders {
  const header = readHeader(input);
  const shoff = toNumber(input.u64(EHDR.shoff), "e_shoff", input.loc({}));
  let shnum = input.u16(EHDR.shnum);
  let shstrndx = input.u16(EHDR.shstrndx);
  // No section header table: the model still starts with the null section.
  if (shoff === 0) return { header, shdrs: [nullShdr()], shstrndx: 0 };

  const shentsize = input.u16(EHDR.shentsize);
  if (shentsize !== SHDR.SIZE) {
    throw new ElfError(
      "ELF_BAD_ENTSIZE",
      `Cannot read section headers: e_shentsize is ${shentsize}, not ${SHDR.SIZE}`,
      input.loc({ offset: EHDR.shentsize }),
    );
  }
  input.need(shoff, SHDR.SIZE, "section header 0");
  if (shnum === 0)
    shnum = toNumber(input.u64(shoff + SHDR.size), "the section count", input.loc({ offset: shoff }));
  if (shstrndx === SHN_XINDEX) shstrndx = input.u32(shoff + SHDR.link);
  if (shnum > Math.floor((input.length - shoff) / SHDR.SIZE)) {
    throw new ElfError(
      "ELF_TRUNCATED",
      `Cannot read ${shnum} section headers at 0x${shoff.toString(16)}: the file ends first`,
      input.loc({ offset: shoff }),
    );
  }
  if (shstrndx !== 0 && shstrndx >= shnum) {
    throw new ElfError(
      "ELF_BAD_SECTION_INDEX",
      `Cannot find the section name table: e_shstrndx ${shstrndx} is past the ${shnum} sections`,
      input.loc({ offset: EHDR.shstrndx }),
    );
  }

  if (shnum === 0) return { header, shdrs: [nullShdr()], shstrndx: 0 };
  const shdrs: RawShdr[] = new Array(shnum);
  for (let i = 0; i < shnum; i++) shdrs[i] = readShdr(input, shoff + i * SHDR.SIZE, i);
  return { header, shdrs, shstrndx };
}

function nullShdr(): RawShdr {
  return {
    name: 0,
    type: SHT_NULL,
    flags: 0n,
    addr: 0n,
    offset: 0,
    size: 0,
    link: 0,
    info: 0,
    addralign: 0,
    entsize: 0,
  };
}

function readHeader(input: ElfInput): ElfHeader {
  const b = input.bytes;
  for (let i = 0; i < ELFMAG.length; i++) {
    if (i >= b.length)
      throw new ElfError(
        "ELF_TRUNCATED",
        "Cannot read the ELF header: the file is empty or cut off",
        input.loc({}),
      );
    if (b[i] !== ELFMAG[i])
      throw new ElfError(
        "ELF_BAD_MAGIC",
        "Cannot read the file: it is not ELF (bad magic)",
        input.loc({ offset: i }),
      );
  }
  const cls = b[EI.CLASS];
  if (cls !== undefined && cls !== ELFCLASS64) {
    const what = cls === ELFCLASS32 ? "a 32-bit (ELFCLASS32) object" : `of unknown class ${cls}`;
    throw new ElfError(
      "ELF_BAD_CLASS",
      `Cannot read the file: it is ${what}; only ELF64 is supported`,
      input.loc({ offset: EI.CLASS }),
    );
  }
  const data = b[EI.DATA];
  if (data !== undefined && data !== ELFDATA2LSB) {
    const what = data === ELFDATA2MSB ? "big-endian" : `of unknown byte order ${data}`;
    throw new ElfError(
      "ELF_BAD_ENDIAN",
      `Cannot read the file: it is ${what}; only little-endian is supported`,
      input.loc({ offset: EI.DATA }),
    );
  }
  input.need(0, EHDR.SIZE, "the ELF header");
  if (b[EI.VERSION] !== EV_CURRENT || input.u32(EHDR.version) !== EV_CURRENT) {
    throw new ElfError(
      "ELF_BAD_VERSION",
      "Cannot read the file: its ELF version is not EV_CURRENT (1)",
      input.loc({ offset: EI.VERSION }),
    );
  }
  const machine = input.u16(EHDR.machine);
  if (machine !== EM_X86_64) {
    throw new ElfError(
      "ELF_BAD_MACHINE",
      `Cannot read the file: machine ${machine} is not x86-64 (${EM_X86_64})`,
      input.loc({ offset: EHDR.machine }),
    );
  }
  const type = input.u16(EHDR.type);
  if (type !== ET_REL && type !== ET_EXEC && type !== ET_DYN) {
    throw new ElfError(
      "ELF_BAD_TYPE",
      `Cannot read the file: type ${type} is not ET_REL, ET_EXEC or ET_DYN`,
      input.loc({ offset: EHDR.type }),
    );
  }
  return {
    type,
    machine,
    version: input.u32(EHDR.version),
    osabi: input.u8(EI.OSABI),
    abiVersion: input.u8(EI.ABIVERSION),
    flags: input.u32(EHDR.flags),
    entry: input.u64(EHDR.entry),
  };
}

/** The caller has checked that the whole table is inside the file. */
function readShdr(input: ElfInput, at: number, index: number): RawShdr {
  const loc = input.loc({ section: `#${index}`, offset: at });
  const type = input.u32(at + SHDR.type);
  const offset = toNumber(input.u64(at + SHDR.offset), "sh_offset", loc);
  const size = toNumber(input.u64(at + SHDR.size), "sh_size", loc);
  const align = input.u64(at + SHDR.addralign);
  if ((align & (align - 1n)) !== 0n) {
    throw new ElfError(
      "ELF_BAD_ALIGNMENT",
      `Cannot read section #${index}: sh_addralign 0x${align.toString(16)} is not a power of two`,
      loc,
    );
  }
  const addralign = toNumber(align, "sh_addralign", loc);
  const entsize = toNumber(input.u64(at + SHDR.entsize), "sh_entsize", loc);
  if (index > 0 && type !== SHT_NOBITS && type !== SHT_NULL) {
    input.need(
      offset,
      size,
      `the contents of section #${index}`,
      { section: `#${index}` },
      "ELF_SECTION_OUT_OF_FILE",
    );
  }
  return {
    name: input.u32(at + SHDR.name),
    type,
    flags: input.u64(at + SHDR.flags),
    addr: input.u64(at + SHDR.addr),
    offset,
    size,
    link: input.u32(at + SHDR.link),
    info: input.u32(at + SHDR.info),
    addralign,
    entsize,
  };
}
