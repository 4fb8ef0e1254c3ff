/**
 * Direct relative branches (jmp/jcc rel8/rel32, call rel32, loop/jecxz rel8) as the padding-tolerant
 * comparison (compare-padded.ts) sees them: where the displacement is, what it says, and whether a
 * short and a near one are the same branch relaxed. GNU as emits a jmp or jcc as rel8 and widens
 * it to rel32 exactly when its target lies beyond -128..127 bytes, so alignment padding between a
 * branch and its target can turn `eb` into `e9` and `7x` into `0f 8x` (the same condition nibble).
 * loop, jecxz and call have no such pair.
 */
import type { X86Instruction } from "../x86/index.js";

export interface RelField {
  offset: number;
  size: number;
}

/** The relative field of a direct jmp/jcc/call (rel8 or rel32): the opcode bytes first, the kind asked only then. */
export function relField(code: Uint8Array, insn: X86Instruction): RelField | undefined {
  const end = insn.offset + insn.length;
  const op = code[end - 2]!;
  const op1 = code[end - 5]!;
  let field: RelField | undefined;
  if ((op >= 0x70 && op <= 0x7f) || op === 0xeb || (op >= 0xe0 && op <= 0xe3))
    field = { offset: end - 1, size: 1 };
  else if (op1 === 0xe8 || op1 === 0xe9 || (code[end - 6] === 0x0f && op1 >= 0x80 && op1 <= 0x8f))
    field = { offset: end - 4, size: 4 };
  return field && (insn.kind === "jump" || insn.kind === "call") ? field : undefined;
}

export function readRel(code: Uint8Array, field: RelField): number {
  if (field.size === 1) return (code[field.offset]! << 24) >> 24;
  return Buffer.from(code.buffer, code.byteOffset + field.offset, 4).readInt32LE(0);
}

/**
 * What a jmp or jcc does, its displacement left out: its prefixes' bytes and "jmp" or the
 * condition nibble ("jcc N"); undefined for a branch with no short/near pair (loop, jecxz, call).
 */
function relaxableOperation(code: Uint8Array, insn: X86Instruction, rel: RelField): string | undefined {
  const op = code[rel.offset - 1]!;
  let operation: string | undefined;
  let opcodeAt = rel.offset - 1;
  if (rel.size === 1 && op === 0xeb) operation = "jmp";
  else if (rel.size === 1 && op >= 0x70 && op <= 0x7f) operation = `jcc ${op & 0xf}`;
  else if (rel.size === 4 && op === 0xe9) operation = "jmp";
  else if (rel.size === 4 && op >= 0x80 && op <= 0x8f && code[rel.offset - 2] === 0x0f) {
    operation = `jcc ${op & 0xf}`;
    opcodeAt--;
  }
  if (operation === undefined) return undefined;
  const prefixes = Buffer.from(code.subarray(insn.offset, opcodeAt)).toString("hex");
  return `${prefixes}:${operation}`;
}

/**
 * Whether ours (rel8 or rel32) and the kernel's (the other size) are one jmp, or one jcc with the
 * same condition, with the same prefixes: the same branch as GNU as relaxes it. Their targets are
 * the caller's to compare.
 */
export function sameBranchRelaxed(
  ours: { code: Uint8Array; insn: X86Instruction; rel: RelField },
  theirs: { code: Uint8Array; insn: X86Instruction; rel: RelField },
): boolean {
  if (ours.rel.size === theirs.rel.size) return false;
  const op = relaxableOperation(ours.code, ours.insn, ours.rel);
  return op !== undefined && op === relaxableOperation(theirs.code, theirs.insn, theirs.rel);
}
