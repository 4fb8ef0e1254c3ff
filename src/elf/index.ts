/** The ELF64 object library: read, look up, change and write x86-64 relocatable objects. */
export * from "./constants.js";
export { ElfError, type ElfErrorCode, isElfError } from "./elf-error.js";
export { createElf, ElfFile, type ElfHeader, isOrdinaryRela } from "./elf-file.js";
export type { ElfNote } from "./elf-note.js";
export { ElfReloc, type RelocInit } from "./elf-reloc.js";
export { ElfSection, type SectionInit } from "./elf-section.js";
export { ElfSymbol, type SymbolInit } from "./elf-symbol.js";
export { readElf } from "./read-elf.js";
export type { RemoveOptions } from "./remove.js";
export { writeElf } from "./write-elf.js";
