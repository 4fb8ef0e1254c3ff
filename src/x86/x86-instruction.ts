/** What a decoder gives of x86-64 instructions: the one shape both decoders produce. */

/** One decoded instruction, as plain data. Offsets are relative to the code array given. */
export interface X86Instruction {
  offset: number;
  length: number;
  /** Lower-case mnemonic: "mov", "call", "endbr64", ... ("(bad)" for bytes that do not decode). */
  mnemonic: string;
  /** AT&T syntax, the way objdump prints it (branch targets as offsets in the code array). */
  text: string;
  kind: "call" | "jump" | "ret" | "other";
  /** The first immediate field in the instruction bytes, if any. */
  immediate?: { offset: number; size: number; value: bigint };
  /** The displacement field (memory operand or rip-relative), if any. */
  displacement?: { offset: number; size: number };
  /** For `mov $imm, %reg` and the like: the destination register ("esi", "rdx"...). */
  destRegister?: string;
  /** True when the bytes did not decode to a valid instruction. */
  invalid: boolean;
}

export interface InstructionDecoder {
  /** Decodes the instruction at `offset`; `end` bounds it (default: the array's end). */
  decode(code: Uint8Array, offset: number, end?: number): X86Instruction;
  /** Decodes every instruction in [start, end). */
  decodeRange(code: Uint8Array, start: number, end: number): X86Instruction[];
}
