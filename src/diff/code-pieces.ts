/**
 * Code pieces: a section of small snippets that functions jump into and that jump back out
 * (static_cpu_has()'s .altinstr_aux, special/alternatives.ts), one section for the whole object
 * and no symbol to tell the snippets apart. It is cut by decoding: a piece runs from where the
 * previous one ended to its first unconditional jump (or return, or ud2). A piece can be copied on its
 * own when everything it refers to outside itself goes through a relocation; one that cannot
 * keeps the reason, and whoever needs it refuses with it.
 */
import type { ElfReloc, ElfSection } from "../elf/index.js";
import { findRangeAt } from "../util/binary-search.js";
import { type X86Instruction, x86Decoder } from "../x86/index.js";
import { DiffError } from "./diff-error.js";

export interface CodePiece {
  section: ElfSection;
  /** First byte, from the section start. */
  start: number;
  /** One past the last byte. */
  end: number;
  insns: readonly X86Instruction[];
  /** The relocations inside the piece, sorted by offset. */
  relocs: readonly ElfReloc[];
  /** Why the piece cannot be copied on its own (undefined when it can). */
  problem?: string;
}

/** The pieces of each code-piece section, cut once (inputs are never modified). */
const cut = new WeakMap<ElfSection, readonly CodePiece[]>();

/** The pieces of `section`, in order, covering it from start to end. */
export function codePiecesOf(section: ElfSection): readonly CodePiece[] {
  let pieces = cut.get(section);
  if (!pieces) {
    pieces = cutPieces(section);
    cut.set(section, pieces);
  }
  return pieces;
}

/** The piece of `section` that holds `offset`, if any. */
export function findCodePiece(section: ElfSection, offset: number): CodePiece | undefined {
  return findRangeAt(codePiecesOf(section), offset);
}

/**
 * Why a jump to `offset` of `section` cannot take a piece along on its own, or undefined when
 * it can: it must land on the first instruction of a piece that can be copied alone.
 */
export function codePieceProblem(section: ElfSection, offset: number): string | undefined {
  const piece = findCodePiece(section, offset);
  if (!piece) return "there is no code there";
  if (piece.problem) return `the piece there ${piece.problem}`;
  if (offset !== piece.start)
    return `that is the middle of a piece (which starts at +0x${piece.start.toString(16)})`;
  return undefined;
}

/** The refusal of `owner`, which jumps to `offset` of `section`, where `problem` is. */
export function codePieceRefusal(
  owner: string,
  section: ElfSection,
  offset: number,
  problem: string,
  file: string | undefined,
): DiffError {
  return new DiffError(
    "DIFF_UNSUPPORTED_SECTION",
    `Cannot patch ${owner}: it jumps to ${section.name}+0x${offset.toString(16)}, code it needs that cannot be cut out: ${problem}`,
    { file, section: section.name, symbol: owner },
  );
}

/** The refusal of `owner`, whose piece at `offset` of `section` jumps into `target`, not carried. */
export function codePieceJumpRefusal(
  owner: string,
  section: ElfSection,
  offset: number,
  target: string,
  file: string | undefined,
): DiffError {
  return new DiffError(
    "DIFF_UNSUPPORTED_SECTION",
    `Cannot patch ${owner}: its code in ${section.name} (+0x${offset.toString(16)}) jumps into ${target}, which the patch does not carry`,
    { file, section: section.name, symbol: owner },
  );
}

/** The instruction of a code-piece section that holds `offset` (for PC-relative addends). */
export function findCodePieceInsn(section: ElfSection, offset: number): X86Instruction | undefined {
  const piece = findCodePiece(section, offset);
  return piece?.insns.find((i) => offset >= i.offset && offset < i.offset + i.length);
}

function cutPieces(section: ElfSection): CodePiece[] {
  const relocs = section.rela ? [...section.rela.relocs].sort((a, b) => a.offset - b.offset) : [];
  const pieces: CodePiece[] = [];
  let insns: X86Instruction[] = [];
  let start = 0;
  const close = (end: number, problem?: string): void => {
    const inside = relocs.filter((r) => r.offset >= start && r.offset < end);
    const piece: CodePiece = { section, start, end, insns, relocs: inside };
    const why = problem ?? pieceProblem(piece);
    if (why) piece.problem = why;
    pieces.push(piece);
    insns = [];
    start = end;
  };
  for (const insn of x86Decoder().decodeRange(section.data, 0, section.size)) {
    if (insn.invalid) {
      close(section.size, `holds bytes at +0x${insn.offset.toString(16)} that do not decode`);
      return pieces;
    }
    insns.push(insn);
    // A piece ends where execution cannot fall through: a jump back, a return, a trap (4.x
    // refcount_t's `lea; ud2`, resumed by its __ex_table entry's handler).
    if (insn.mnemonic === "jmp" || insn.kind === "ret" || insn.mnemonic === "ud2")
      close(insn.offset + insn.length);
  }
  if (insns.length > 0) close(section.size, "runs off the end of the section (no jump back)");
  return pieces;
}

/**
 * Why `piece` cannot be copied alone: a relocation that is not an instruction's displacement or
 * immediate (the decoding is out of step), one back into its own section, or a branch or
 * RIP-relative operand resolved by the assembler (no relocation) that leaves the piece.
 */
function pieceProblem(piece: CodePiece): string | undefined {
  const hex = (n: number) => `+0x${n.toString(16)}`;
  let k = 0;
  const fields = new Set<number>();
  for (const insn of piece.insns) {
    const end = insn.offset + insn.length;
    if (insn.displacement) fields.add(insn.displacement.offset);
    if (insn.immediate) fields.add(insn.immediate.offset);
    const own: ElfReloc[] = [];
    while (k < piece.relocs.length && piece.relocs[k]!.offset < end) own.push(piece.relocs[k++]!);
    for (const r of own) {
      if (!fields.has(r.offset))
        return `has a relocation at ${hex(r.offset)} that is no operand of the instruction at ${hex(insn.offset)} (${insn.mnemonic})`;
      if (r.symbol.section === piece.section)
        return `refers to its own section at ${hex(r.offset)} (${insn.mnemonic})`;
    }
    const related = (f: { offset: number } | undefined) => f && own.some((r) => r.offset === f.offset);
    if (insn.kind !== "other" && insn.kind !== "ret" && insn.immediate && !related(insn.immediate)) {
      const target = end + displacementAt(piece.section.data, insn.immediate.offset, insn.immediate.size);
      if (target < piece.start || target >= piece.end)
        return `branches from ${hex(insn.offset)} to ${hex(target)}, outside itself, without a relocation (${insn.mnemonic})`;
    }
    if (isRipRelative(piece.section.data, insn) && !related(insn.displacement))
      return `addresses memory relative to ${hex(insn.offset)} without a relocation (${insn.mnemonic})`;
    fields.clear();
  }
  return undefined;
}

/**
 * True when the memory operand of `insn` is RIP-relative: a 32-bit displacement right after a
 * ModRM byte with mod 00 and r/m 101 (a SIB byte of the same bit pattern, an absolute address,
 * counts too: it is no less a place the piece cannot carry without a relocation).
 */
function isRipRelative(data: Uint8Array, insn: X86Instruction): boolean {
  const d = insn.displacement;
  return d !== undefined && d.size === 4 && (data[d.offset - 1]! & 0xc7) === 0x05;
}

/** The signed branch displacement of `size` bytes at `offset`. */
function displacementAt(data: Uint8Array, offset: number, size: number): number {
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  if (size === 1) return view.getInt8(offset);
  if (size === 2) return view.getInt16(offset, true);
  return view.getInt32(offset, true);
}
