import type { ElfSymbol } from "./elf-symbol.js";

export interface RelocInit {
  offset: number;
  type: number;
  symbol: ElfSymbol;
  addend?: bigint;
}

/**
 * One relocation of an SHT_RELA (or SHT_REL) section: at `offset` in the section it applies to
 * (the rela section's `base`), of `type` (R_X86_64_*), against `symbol` (an object of the same
 * file, never an index), plus `addend` (0n for SHT_REL).
 */
export class ElfReloc {
  offset: number;
  type: number;
  symbol: ElfSymbol;
  addend: bigint;

  constructor(offset: number, type: number, symbol: ElfSymbol, addend = 0n) {
    this.offset = offset;
    this.type = type;
    this.symbol = symbol;
    this.addend = addend;
  }
}
