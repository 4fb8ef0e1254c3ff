import { type ErrorLocation, KpatchError } from "../util/errors.js";

/** Stable codes of the errors src/elf throws; tests and callers match on them. */
export type ElfErrorCode =
  | "ELF_TRUNCATED" // the file ends inside a record
  | "ELF_BAD_MAGIC" // not an ELF file
  | "ELF_BAD_CLASS" // not ELFCLASS64
  | "ELF_BAD_ENDIAN" // not little-endian
  | "ELF_BAD_VERSION" // e_ident[EI_VERSION] or e_version is not EV_CURRENT
  | "ELF_BAD_MACHINE" // not EM_X86_64
  | "ELF_BAD_TYPE" // not ET_REL/ET_EXEC/ET_DYN (or, to write, not ET_REL)
  | "ELF_BAD_ENTSIZE" // a record size that is not the ELF64 one, or a size not a multiple of it
  | "ELF_BAD_ALIGNMENT" // sh_addralign neither 0 nor a power of two
  | "ELF_BAD_SECTION_INDEX" // a section index out of range, or naming the wrong kind of section
  | "ELF_BAD_SYMBOL_INDEX" // a symbol index out of range
  | "ELF_BAD_STRING" // a string offset outside its table, or a string without its NUL
  | "ELF_BAD_SYMTAB" // more than one symbol table, or a broken SHT_SYMTAB_SHNDX
  | "ELF_BAD_RELOC" // a relocation naming a missing symbol or pointing outside its section
  | "ELF_BAD_GROUP" // a malformed SHT_GROUP
  | "ELF_BAD_NOTE" // a malformed SHT_NOTE
  | "ELF_SECTION_OUT_OF_FILE" // section contents past the end of the file
  | "ELF_VALUE_TOO_LARGE" // a 64-bit size/offset/index beyond what a number holds exactly
  | "ELF_NOT_FOUND" // lookup*() found nothing
  | "ELF_NOT_OWNED" // a section or symbol of another file (or one already removed)
  | "ELF_SECTION_IN_USE" // removing a section something still refers to
  | "ELF_SYMBOL_IN_USE"; // removing a symbol something still refers to

declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    elf: ElfErrorCode;
  }
}

export class ElfError extends KpatchError {
  declare readonly code: ElfErrorCode;

  constructor(
    code: ElfErrorCode,
    message: string,
    location: ErrorLocation = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, location, options);
    this.name = "ElfError";
  }
}

export function isElfError(e: unknown): e is ElfError {
  return e instanceof ElfError;
}
