/**
 * x86-64 instruction decoding behind a small interface: lengths, text, branch kind, and where the
 * immediate and displacement fields sit (so a differ can tell a changed constant from a moved
 * relocation). The implementation uses iced-x86 (WebAssembly); its objects are freed here and
 * never leak out.
 */
import { createRequire } from "node:module";

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

// biome-ignore lint/suspicious/noExplicitAny: iced-x86 is CommonJS with a generated API.
type Iced = any;
let iced: Iced | undefined;

function loadIced(): Iced {
  if (iced === undefined) iced = createRequire(import.meta.url)("iced-x86");
  return iced;
}

class IcedDecoder implements InstructionDecoder {
  decode(code: Uint8Array, offset: number, end = code.length): X86Instruction {
    const out = this.decodeRange(code, offset, Math.min(end, offset + 15), 1);
    return out[0]!;
  }

  decodeRange(
    code: Uint8Array,
    start: number,
    end: number,
    limit = Number.POSITIVE_INFINITY,
  ): X86Instruction[] {
    const x = loadIced();
    const bytes = code.subarray(start, end);
    const decoder = new x.Decoder(64, bytes, x.DecoderOptions.None);
    const formatter = new x.Formatter(x.FormatterSyntax.Gas);
    const out: X86Instruction[] = [];
    try {
      decoder.ip = BigInt(start);
      while (decoder.canDecode && out.length < limit) {
        const insn = decoder.decode();
        const offsets = decoder.getConstantOffsets(insn);
        try {
          out.push(toPlain(x, insn, offsets, formatter));
        } finally {
          offsets.free();
          insn.free();
        }
      }
    } finally {
      formatter.free();
      decoder.free();
    }
    return out;
  }
}

function toPlain(x: Iced, insn: Iced, offsets: Iced, formatter: Iced): X86Instruction {
  const offset = Number(insn.ip);
  const invalid = insn.isInvalid === true || insn.code === x.Code.INVALID;
  const mnemonic = invalid ? "(bad)" : String(x.Mnemonic[insn.mnemonic]).toLowerCase();
  const flow = insn.flowControl;
  const F = x.FlowControl;
  let kind: X86Instruction["kind"] = "other";
  if (flow === F.Call || flow === F.IndirectCall) kind = "call";
  else if (flow === F.UnconditionalBranch || flow === F.ConditionalBranch || flow === F.IndirectBranch)
    kind = "jump";
  else if (flow === F.Return) kind = "ret";
  const result: X86Instruction = {
    offset,
    length: insn.length,
    mnemonic,
    text: invalid ? "(bad)" : formatter.format(insn),
    kind,
    invalid,
  };
  if (offsets.hasImmediate) {
    result.immediate = {
      offset: offset + offsets.immediateOffset,
      size: offsets.immediateSize,
      value: immediateOf(x, insn),
    };
  }
  if (offsets.hasDisplacement) {
    result.displacement = { offset: offset + offsets.displacementOffset, size: offsets.displacementSize };
  }
  if (insn.opCount >= 1 && insn.op0Kind === x.OpKind.Register) {
    result.destRegister = String(x.Register[insn.op0Register]).toLowerCase();
  }
  return result;
}

function immediateOf(x: Iced, insn: Iced): bigint {
  for (let i = 0; i < insn.opCount; i++) {
    const k = insn.opKind(i);
    if (
      k === x.OpKind.Immediate8 ||
      k === x.OpKind.Immediate16 ||
      k === x.OpKind.Immediate32 ||
      k === x.OpKind.Immediate64 ||
      k === x.OpKind.Immediate8to16 ||
      k === x.OpKind.Immediate8to32 ||
      k === x.OpKind.Immediate8to64 ||
      k === x.OpKind.Immediate32to64
    ) {
      return BigInt(insn.immediate(i));
    }
  }
  return 0n;
}

let shared: InstructionDecoder | undefined;

/** The process-wide decoder (the WebAssembly module loads on first use). */
export function x86Decoder(): InstructionDecoder {
  shared ??= new IcedDecoder();
  return shared;
}

/** The instruction that contains `offset`, decoding from `start` (a known instruction boundary). */
export function findInstructionAt(
  code: Uint8Array,
  start: number,
  end: number,
  offset: number,
  decoder: InstructionDecoder = x86Decoder(),
): X86Instruction | undefined {
  for (const insn of decoder.decodeRange(code, start, end)) {
    if (offset >= insn.offset && offset < insn.offset + insn.length) return insn;
    if (insn.offset > offset) break;
  }
  return undefined;
}
