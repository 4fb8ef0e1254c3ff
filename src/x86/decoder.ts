/**
 * x86-64 instruction decoding behind a small interface: lengths, text, branch kind, and where the
 * immediate and displacement fields sit (so a differ can tell a changed constant from a moved
 * relocation). Our own length decoder answers first (fast-decoder.ts); iced-x86 (WebAssembly)
 * the rest, its objects freed here and never leaking out.
 */
import { createRequire } from "node:module";
import { FastDecoder } from "./fast-decoder.js";
import type { InstructionDecoder, X86Instruction } from "./x86-instruction.js";

export type { InstructionDecoder, X86Instruction } from "./x86-instruction.js";

// biome-ignore lint/suspicious/noExplicitAny: iced-x86 is CommonJS with a generated API.
type Iced = any;
let icedModule: Iced | undefined;

function loadIced(): Iced {
  if (icedModule === undefined) icedModule = createRequire(import.meta.url)("iced-x86");
  return icedModule;
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

let iced: InstructionDecoder | undefined;
let shared: InstructionDecoder | undefined;

/** iced-x86 alone (the WebAssembly module loads on first use): every field at once. */
export function icedDecoder(): InstructionDecoder {
  iced ??= new IcedDecoder();
  return iced;
}

/**
 * The process-wide decoder: our length decoder, with iced-x86 started only for what it does not
 * know (fast-decoder.ts).
 */
export function x86Decoder(): InstructionDecoder {
  shared ??= new FastDecoder(icedDecoder());
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
