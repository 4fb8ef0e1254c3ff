/**
 * Pieces of a payload section (.altinstr_replacement): the piece an entry points at runs from
 * where a relocation against the section's symbol lands to the next such place (or the section's
 * end). The copier of special sections cuts them so, and the comparison of entries compares them so.
 */
import type { ElfFile, ElfReloc, ElfSection } from "../elf/index.js";
import { upperBound } from "../util/binary-search.js";
import type { DiffContext } from "./context.js";
import { DiffError } from "./diff-error.js";

/** Where a relocation into a payload lands: its symbol's place plus the addend. */
function payloadOffset(r: ElfReloc): number {
  return Number((r.symbol.isSectionSymbol ? 0n : r.symbol.value) + r.addend);
}

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
        if (r.symbol.section === section) starts.add(payloadOffset(r));
      }
    }
    this.starts = [...starts].sort((x, y) => x - y);
  }

  /**
   * The piece `r` (an entry's relocation into the payload) points at; DIFF_BAD_INPUT when it
   * lands outside the section (an empty piece may sit at its very end).
   */
  pieceOf(r: ElfReloc, file: string | undefined): { start: number; end: number } {
    const start = payloadOffset(r);
    if (!(start >= 0 && start <= this.section.size)) {
      throw new DiffError(
        "DIFF_BAD_INPUT",
        `Cannot cut ${this.section.name} into pieces: an entry points at ${start}, outside its ${this.section.size} bytes`,
        { file, section: this.section.name },
      );
    }
    return { start, end: this.endOf(start) };
  }

  /** The end of the piece that starts at `start`. */
  endOf(start: number): number {
    const i = upperBound(this.starts, start, (s) => s);
    return this.starts[i] ?? this.section.size;
  }
}
