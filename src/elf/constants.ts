/**
 * ELF64 constants for x86-64 relocatable objects, as the gABI, `man 5 elf` and the kernel's
 * include/uapi/linux/elf.h spell them. Section flags are bigint because sh_flags is a 64-bit field
 * (and SHF_EXCLUDE is bit 31, which 32-bit number bitwise operators would turn negative).
 */

// e_ident
export const ELFMAG = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46); // "\x7fELF"
export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;
export const EV_CURRENT = 1;
export const ELFOSABI_NONE = 0;

// e_type
export const ET_NONE = 0;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

// e_machine
export const EM_X86_64 = 62;

// Special section indexes
export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
/** st_shndx of `.klp.sym.*` symbols: the livepatch core resolves them (module-elf-format.rst). */
export const SHN_LIVEPATCH = 0xff20;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
/** The real index is elsewhere: in SHT_SYMTAB_SHNDX for symbols, in section header 0 for e_shstrndx. */
export const SHN_XINDEX = 0xffff;
export const SHN_HIRESERVE = 0xffff;

// sh_type
export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_HASH = 5;
export const SHT_DYNAMIC = 6;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHT_SHLIB = 10;
export const SHT_DYNSYM = 11;
export const SHT_INIT_ARRAY = 14;
export const SHT_FINI_ARRAY = 15;
export const SHT_PREINIT_ARRAY = 16;
export const SHT_GROUP = 17;
export const SHT_SYMTAB_SHNDX = 18;
export const SHT_RELR = 19;
export const SHT_LLVM_ADDRSIG = 0x6fff4c03;
export const SHT_GNU_ATTRIBUTES = 0x6ffffff5;
export const SHT_GNU_HASH = 0x6ffffff6;
export const SHT_GNU_VERDEF = 0x6ffffffd;
export const SHT_GNU_VERNEED = 0x6ffffffe;
export const SHT_GNU_VERSYM = 0x6fffffff;
export const SHT_X86_64_UNWIND = 0x70000001;

// sh_flags
export const SHF_WRITE = 0x1n;
export const SHF_ALLOC = 0x2n;
export const SHF_EXECINSTR = 0x4n;
export const SHF_MERGE = 0x10n;
export const SHF_STRINGS = 0x20n;
export const SHF_INFO_LINK = 0x40n;
export const SHF_LINK_ORDER = 0x80n;
export const SHF_OS_NONCONFORMING = 0x100n;
export const SHF_GROUP = 0x200n;
export const SHF_TLS = 0x400n;
export const SHF_COMPRESSED = 0x800n;
/** Marks `.klp.rela.<obj>.<section>`: relocations the livepatch core applies. */
export const SHF_RELA_LIVEPATCH = 0x00100000n;
/** Kernel meaning of bit 21 (include/uapi/linux/elf.h); GNU tools call the same bit SHF_GNU_RETAIN. */
export const SHF_RO_AFTER_INIT = 0x00200000n;
export const SHF_GNU_RETAIN = 0x00200000n;
export const SHF_X86_64_LARGE = 0x10000000n;
export const SHF_EXCLUDE = 0x80000000n;

// Section group flags (first word of an SHT_GROUP section)
export const GRP_COMDAT = 0x1;

// Symbol binding (st_info >> 4)
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;
export const STB_GNU_UNIQUE = 10;

// Symbol type (st_info & 0xf)
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;
export const STT_COMMON = 5;
export const STT_TLS = 6;
export const STT_GNU_IFUNC = 10;

// Symbol visibility (st_other & 3)
export const STV_DEFAULT = 0;
export const STV_INTERNAL = 1;
export const STV_HIDDEN = 2;
export const STV_PROTECTED = 3;

// Note types seen in kernel objects
export const NT_GNU_BUILD_ID = 3;
export const NT_GNU_PROPERTY_TYPE_0 = 5;

/** x86-64 relocation types (psABI), indexed by number, for printing. */
export const R_X86_64_NAMES: readonly string[] = [
  "R_X86_64_NONE",
  "R_X86_64_64",
  "R_X86_64_PC32",
  "R_X86_64_GOT32",
  "R_X86_64_PLT32",
  "R_X86_64_COPY",
  "R_X86_64_GLOB_DAT",
  "R_X86_64_JUMP_SLOT",
  "R_X86_64_RELATIVE",
  "R_X86_64_GOTPCREL",
  "R_X86_64_32",
  "R_X86_64_32S",
  "R_X86_64_16",
  "R_X86_64_PC16",
  "R_X86_64_8",
  "R_X86_64_PC8",
  "R_X86_64_DTPMOD64",
  "R_X86_64_DTPOFF64",
  "R_X86_64_TPOFF64",
  "R_X86_64_TLSGD",
  "R_X86_64_TLSLD",
  "R_X86_64_DTPOFF32",
  "R_X86_64_GOTTPOFF",
  "R_X86_64_TPOFF32",
  "R_X86_64_PC64",
  "R_X86_64_GOTOFF64",
  "R_X86_64_GOTPC32",
  "R_X86_64_GOT64",
  "R_X86_64_GOTPCREL64",
  "R_X86_64_GOTPC64",
  "R_X86_64_GOTPLT64",
  "R_X86_64_PLTOFF64",
  "R_X86_64_SIZE32",
  "R_X86_64_SIZE64",
  "R_X86_64_GOTPC32_TLSDESC",
  "R_X86_64_TLSDESC_CALL",
  "R_X86_64_TLSDESC",
  "R_X86_64_IRELATIVE",
  "R_X86_64_RELATIVE64",
  "R_X86_64_39",
  "R_X86_64_40",
  "R_X86_64_GOTPCRELX",
  "R_X86_64_REX_GOTPCRELX",
];

export const R_X86_64_NONE = 0;
export const R_X86_64_64 = 1;
export const R_X86_64_PC32 = 2;
export const R_X86_64_PLT32 = 4;
export const R_X86_64_32 = 10;
export const R_X86_64_32S = 11;
export const R_X86_64_PC64 = 24;
export const R_X86_64_GOTPCRELX = 41;
export const R_X86_64_REX_GOTPCRELX = 42;

const SHT_NAMES: ReadonlyMap<number, string> = new Map([
  [SHT_NULL, "NULL"],
  [SHT_PROGBITS, "PROGBITS"],
  [SHT_SYMTAB, "SYMTAB"],
  [SHT_STRTAB, "STRTAB"],
  [SHT_RELA, "RELA"],
  [SHT_HASH, "HASH"],
  [SHT_DYNAMIC, "DYNAMIC"],
  [SHT_NOTE, "NOTE"],
  [SHT_NOBITS, "NOBITS"],
  [SHT_REL, "REL"],
  [SHT_SHLIB, "SHLIB"],
  [SHT_DYNSYM, "DYNSYM"],
  [SHT_INIT_ARRAY, "INIT_ARRAY"],
  [SHT_FINI_ARRAY, "FINI_ARRAY"],
  [SHT_PREINIT_ARRAY, "PREINIT_ARRAY"],
  [SHT_GROUP, "GROUP"],
  [SHT_SYMTAB_SHNDX, "SYMTAB_SHNDX"],
  [SHT_RELR, "RELR"],
  [SHT_LLVM_ADDRSIG, "LLVM_ADDRSIG"],
  [SHT_GNU_ATTRIBUTES, "GNU_ATTRIBUTES"],
  [SHT_GNU_HASH, "GNU_HASH"],
  [SHT_GNU_VERDEF, "VERDEF"],
  [SHT_GNU_VERNEED, "VERNEED"],
  [SHT_GNU_VERSYM, "VERSYM"],
  [SHT_X86_64_UNWIND, "X86_64_UNWIND"],
]);

const STT_NAMES = ["NOTYPE", "OBJECT", "FUNC", "SECTION", "FILE", "COMMON", "TLS"];
const STB_NAMES = ["LOCAL", "GLOBAL", "WEAK"];
const STV_NAMES = ["DEFAULT", "INTERNAL", "HIDDEN", "PROTECTED"];

const hex = (n: number): string => `0x${n.toString(16)}`;

/** "PROGBITS", "RELA", ... or the number in hex for a type we have no name for. */
export function sectionTypeName(type: number): string {
  return SHT_NAMES.get(type) ?? hex(type);
}

export function symbolTypeName(type: number): string {
  if (type === STT_GNU_IFUNC) return "IFUNC";
  return STT_NAMES[type] ?? hex(type);
}

export function symbolBindName(bind: number): string {
  if (bind === STB_GNU_UNIQUE) return "UNIQUE";
  return STB_NAMES[bind] ?? hex(bind);
}

export function symbolVisibilityName(visibility: number): string {
  return STV_NAMES[visibility & 3] ?? hex(visibility);
}

/** "R_X86_64_PC32", ... or "R_X86_64_<n>" for a number outside the psABI table. */
export function relocTypeName(type: number): string {
  return R_X86_64_NAMES[type] ?? `R_X86_64_${type}`;
}

/** "UNDEF", "ABS", "COMMON", "LIVEPATCH", "XINDEX" or the number, for a reserved st_shndx. */
export function specialShndxName(shndx: number): string {
  switch (shndx) {
    case SHN_UNDEF:
      return "UNDEF";
    case SHN_ABS:
      return "ABS";
    case SHN_COMMON:
      return "COMMON";
    case SHN_LIVEPATCH:
      return "LIVEPATCH";
    case SHN_XINDEX:
      return "XINDEX";
    default:
      return hex(shndx);
  }
}
