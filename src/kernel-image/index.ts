/**
 * A kernel's image and symbols, for kpatch-build and the run-pre check:
 * - extractVmlinux(image): the vmlinux ELF inside a vmlinuz/bzImage (cached by the image's hash);
 * - KernelImage.open(path): bytes at a kernel address, symbols (ELF symtab or kallsyms tables),
 *   the .ibt_endbr_seal list;
 * - KernelSymbols: {name, address, type} in kallsyms order from /proc/kallsyms, System.map, an
 *   ELF symbol table or the kallsyms tables, with sympos the way the livepatch core counts it.
 */
export { extractVmlinux, isElf, isElfFile, type Payload } from "./extract-vmlinux.js";
export type { KallsymsLayout } from "./kallsyms-tables.js";
export { KernelImage, readEndbrSeal } from "./kernel-image.js";
export { isLocalType, type KernelSymbol, KernelSymbols, type SymbolBlock } from "./kernel-symbols.js";
