/**
 * Where each field sits in the ELF64 records (gABI, `man 5 elf`). One table per record; code that
 * reads or writes a field names it here instead of writing the offset. All fields little-endian.
 */

/** e_ident bytes. */
export const EI = {
  MAG0: 0,
  CLASS: 4,
  DATA: 5,
  VERSION: 6,
  OSABI: 7,
  ABIVERSION: 8,
} as const;

/** Elf64_Ehdr: 64 bytes. */
export const EHDR = {
  ident: 0, // unsigned char[16]
  type: 16, // u16
  machine: 18, // u16
  version: 20, // u32
  entry: 24, // u64
  phoff: 32, // u64
  shoff: 40, // u64
  flags: 48, // u32
  ehsize: 52, // u16
  phentsize: 54, // u16
  phnum: 56, // u16
  shentsize: 58, // u16
  shnum: 60, // u16
  shstrndx: 62, // u16
  SIZE: 64,
} as const;

/** Elf64_Shdr: 64 bytes. */
export const SHDR = {
  name: 0, // u32, offset in .shstrtab
  type: 4, // u32
  flags: 8, // u64
  addr: 16, // u64
  offset: 24, // u64
  size: 32, // u64
  link: 40, // u32
  info: 44, // u32
  addralign: 48, // u64
  entsize: 56, // u64
  SIZE: 64,
} as const;

/** Elf64_Sym: 24 bytes. */
export const SYM = {
  name: 0, // u32, offset in the linked string table
  info: 4, // u8: bind << 4 | type
  other: 5, // u8: visibility in the low 2 bits
  shndx: 6, // u16
  value: 8, // u64
  size: 16, // u64
  SIZE: 24,
} as const;

/**
 * Elf64_Rela: 24 bytes. r_info is the u64 `sym << 32 | type`; little-endian, so the type is the
 * low u32 at +8 and the symbol index the high u32 at +12.
 */
export const RELA = {
  offset: 0, // u64
  type: 8, // u32, low half of r_info
  sym: 12, // u32, high half of r_info
  addend: 16, // s64
  SIZE: 24,
} as const;

/** Elf64_Rel: 16 bytes, the same as Elf64_Rela without the addend. */
export const REL = {
  offset: 0,
  type: 8,
  sym: 12,
  SIZE: 16,
} as const;

/** Elf64_Nhdr: 12 bytes, then the name and the descriptor, each padded. */
export const NHDR = {
  namesz: 0, // u32, including the terminating NUL
  descsz: 4, // u32
  type: 8, // u32
  SIZE: 12,
} as const;

/** SHT_GROUP contents: a u32 flag word, then u32 section indexes. */
export const GRP = {
  flags: 0,
  ENTRY: 4,
} as const;

/** SHT_SYMTAB_SHNDX contents: one u32 section index per symbol. */
export const SHNDX_ENTRY = 4;
