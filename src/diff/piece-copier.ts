/**
 * CodePieceCopier: copies the pieces of code-piece sections (.altinstr_aux) that included code
 * jumps into, each once, into an output section of the same name, on the first reference. The
 * piece's own relocations are mapped like the function's: its jumps back land in the output's
 * copy of the function, which must be there (includeDependencies refused otherwise).
 */
import type { ElfSection, ElfSymbol } from "../elf/index.js";
import {
  type CodePiece,
  codePieceJumpRefusal,
  codePieceProblem,
  codePieceRefusal,
  findCodePiece,
} from "./code-pieces.js";
import type { OutputBuilder } from "./output-builder.js";
import { type RelocTarget, resolveRelocTarget } from "./reloc-target.js";

export class CodePieceCopier {
  readonly b: OutputBuilder;
  /** Piece → its offset in the output section. */
  readonly copied = new Map<CodePiece, number>();
  /** Piece → the name of the included function it was copied for. */
  readonly owners = new Map<CodePiece, string>();

  constructor(b: OutputBuilder) {
    this.b = b;
  }

  /** The output symbol and addend for `t`, a reference from `owner` into a piece. */
  map(t: Extract<RelocTarget, { kind: "piece" }>, owner: string): { symbol: ElfSymbol; addend: bigint } {
    const piece = findCodePiece(t.section, t.offset);
    // Inside a piece already carried (the ud2 a refcount_t piece's __ex_table entry names).
    const done = piece && this.copied.get(piece);
    if (done !== undefined) {
      const out = this.b.grownSection(t.section);
      return { symbol: out.sectionSymbol!, addend: t.addend - BigInt(piece!.start) + BigInt(done) };
    }
    const problem = codePieceProblem(t.section, t.offset);
    if (!piece || problem)
      throw codePieceRefusal(owner, t.section, t.offset, problem ?? "", this.b.ctx.patched.file.path);
    const out = this.b.grownSection(t.section);
    const at = this.copy(piece, out, owner);
    return { symbol: out.sectionSymbol!, addend: t.addend - BigInt(piece.start) + BigInt(at) };
  }

  private copy(piece: CodePiece, out: ElfSection, owner: string): number {
    let at = this.copied.get(piece);
    if (at !== undefined) return at;
    at = out.data.length;
    const grown = new Uint8Array(at + (piece.end - piece.start));
    grown.set(out.data);
    grown.set(piece.section.data.subarray(piece.start, piece.end), at);
    out.data = grown;
    this.copied.set(piece, at);
    this.owners.set(piece, owner);
    const { ctx } = this.b;
    for (const r of piece.relocs) {
      const t = resolveRelocTarget(ctx.patched, piece.section, r);
      if (t.kind === "unit" && t.unit.sym.isFunction && !this.b.placed.has(t.unit)) {
        throw codePieceJumpRefusal(owner, piece.section, r.offset, t.unit.sym.name, ctx.patched.file.path);
      }
      this.b.addReloc(out, piece.section, r, at + (r.offset - piece.start), owner);
    }
    return at;
  }
}
