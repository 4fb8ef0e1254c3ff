/**
 * Pieces of a payload section (.altinstr_replacement): the piece an entry points at runs from
 * where a relocation against the section's symbol lands to the next such place (or the section's
 * end). The copier of special sections cuts them so, and the comparison of entries compares them so.
 */
import type { ElfFile, ElfSection } from "../elf/index.js";
import { upperBound } from "../util/binary-search.js";
import type { DiffContext } from "./context.js";

export class PayloadPieces {
  readonly section: ElfSection;
  /** Where pieces start, ascending. */
  readonly starts: readonly number[];

  constructor(ctx: DiffContext, file: ElfFile, section: ElfSection) {
    this.section = section;
    const starts = new Set<number>();
    for (const sec of file.sections) {
      if (!sec.rela) continue;
      for (const r of ctx.relocsOf(sec)) {
        if (r.symbol.section === section && r.symbol.isSectionSymbol) starts.add(Number(r.addend));
      }
    }
    this.starts = [...starts].sort((x, y) => x - y);
  }

  /** The end of the piece that starts at `start`. */
  endOf(start: number): number {
    const i = upperBound(this.starts, start, (s) => s);
    return this.starts[i] ?? this.section.size;
  }
}
