import { upperBound } from "../util/binary-search.js";
import { STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, STT_TLS } from "./constants.js";
import type { ElfSymbol } from "./elf-symbol.js";

/** The symbol types `symbolAt()` answers with: code and data objects that have an extent. */
function hasExtent(sym: ElfSymbol): boolean {
  const t = sym.type;
  return (t === STT_FUNC || t === STT_OBJECT || t === STT_TLS || t === STT_GNU_IFUNC) && sym.size > 0n;
}

/**
 * The function and object symbols of one section sorted by start offset, for binary search.
 * `maxEnd[i]` is the largest end among entries 0..i, so a search walks back only over entries
 * that may still contain the offset (nested or overlapping symbols).
 */
export class SymbolRanges {
  private readonly syms: ElfSymbol[];
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly maxEnd: Float64Array;

  /** `addr` is the section's sh_addr: symbol values are addresses in ET_EXEC, offsets (addr 0) in ET_REL. */
  constructor(symbols: readonly ElfSymbol[], addr: bigint) {
    const entries: { sym: ElfSymbol; start: number; end: number; index: number }[] = [];
    for (const sym of symbols) {
      if (!hasExtent(sym)) continue;
      const start = sym.value - addr;
      const end = start + sym.size;
      if (start < 0n || end > BigInt(Number.MAX_SAFE_INTEGER)) continue;
      entries.push({ sym, start: Number(start), end: Number(end), index: sym._index });
    }
    // By start; at equal starts the first in table order is found first when walking back.
    entries.sort((a, b) => a.start - b.start || b.index - a.index);
    const n = entries.length;
    this.syms = new Array(n);
    this.starts = new Float64Array(n);
    this.ends = new Float64Array(n);
    this.maxEnd = new Float64Array(n);
    let maxEnd = 0;
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      this.syms[i] = e.sym;
      this.starts[i] = e.start;
      this.ends[i] = e.end;
      maxEnd = Math.max(maxEnd, e.end);
      this.maxEnd[i] = maxEnd;
    }
  }

  /** The innermost symbol (largest start) whose [start, start + size) contains `offset`. */
  find(offset: number): ElfSymbol | undefined {
    const after = upperBound(this.starts, offset, (s) => s);
    for (let i = after - 1; i >= 0 && this.maxEnd[i]! > offset; i--) {
      if (this.ends[i]! > offset) return this.syms[i];
    }
    return undefined;
  }
}
