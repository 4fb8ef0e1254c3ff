/**
 * The differ's and the run-pre check's decoder: lengths, operand fields and the few mnemonics
 * they test (nop, int3, ret, call, jmp, jcc, mov, xor, lfence, endbr64, ud2) from our own length
 * decoder (length-decoder.ts), without starting iced-x86 (WebAssembly: tens of milliseconds in
 * a fresh process, seconds in a TCG guest). Anything else about an instruction (its text, another
 * mnemonic, its kind or destination register) is asked of iced-x86 when first read; a range with
 * bytes the length decoder is not sure of is decoded by iced-x86 whole.
 */
import { type DecodedLength, decodeLength } from "./length-decoder.js";
import type { InstructionDecoder, X86Instruction } from "./x86-instruction.js";

type Kind = X86Instruction["kind"];

const JCC = [
  "jo",
  "jno",
  "jb",
  "jae",
  "je",
  "jne",
  "jbe",
  "ja",
  "js",
  "jns",
  "jp",
  "jnp",
  "jl",
  "jge",
  "jle",
  "jg",
];
const REG32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const REG64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"];

/** The register name of number `n` (0-15) at 32 or 64 bits. */
function register(n: number, wide: boolean): string {
  if (n < 8) return (wide ? REG64 : REG32)[n]!;
  return wide ? `r${n}` : `r${n}d`;
}

/** Mnemonic and kind of the instructions we name ourselves; undefined for iced to name. */
// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: one branch per opcode family we name, in the opcode map's order
function classify(d: DecodedLength): { mnemonic: string; kind: Kind } | undefined {
  const { map, opcode, modrm, prefixes, rex, vex } = d;
  if (vex) return undefined;
  const reg = modrm === undefined ? -1 : (modrm >> 3) & 7;
  const plain = prefixes.every((p) => p === 0x66 || p === 0x2e || p === 0x3e);
  const rep = prefixes.includes(0xf3);
  if (map === 1) {
    if (opcode === 0x90 && plain && !(rex & 1) && !rep) return { mnemonic: "nop", kind: "other" };
    if (opcode === 0xcc) return { mnemonic: "int3", kind: "other" };
    if ((opcode === 0xc3 || opcode === 0xc2) && plain) return { mnemonic: "ret", kind: "ret" };
    if (opcode === 0xe8 && plain) return { mnemonic: "call", kind: "call" };
    if ((opcode === 0xe9 || opcode === 0xeb) && plain) return { mnemonic: "jmp", kind: "jump" };
    if (opcode >= 0x70 && opcode <= 0x7f && plain) return { mnemonic: JCC[opcode - 0x70]!, kind: "jump" };
    if (opcode === 0xff && plain && reg === 2) return { mnemonic: "call", kind: "call" };
    if (opcode === 0xff && plain && reg === 4) return { mnemonic: "jmp", kind: "jump" };
    if (opcode >= 0x30 && opcode <= 0x35) return { mnemonic: "xor", kind: "other" };
    if (
      (opcode >= 0x88 && opcode <= 0x8b) ||
      opcode === 0xc6 ||
      opcode === 0xc7 ||
      (opcode >= 0xb0 && opcode <= 0xbf)
    )
      return { mnemonic: "mov", kind: "other" };
    return undefined;
  }
  if (map !== 2) return undefined;
  if (opcode === 0x1f && prefixes.every((p) => p === 0x66 || p === 0x2e || p === 0x3e))
    return { mnemonic: "nop", kind: "other" };
  if (opcode >= 0x80 && opcode <= 0x8f && plain) return { mnemonic: JCC[opcode - 0x80]!, kind: "jump" };
  if (opcode === 0xae && modrm === 0xe8 && prefixes.length === 0)
    return { mnemonic: "lfence", kind: "other" };
  if (opcode === 0x0b && prefixes.length === 0) return { mnemonic: "ud2", kind: "other" };
  if (opcode === 0x1e && modrm === 0xfa && prefixes.length === 1 && prefixes[0] === 0xf3 && !rex)
    return { mnemonic: "endbr64", kind: "other" };
  return undefined;
}

/** The destination register of `mov $imm, %reg` (B8+r, C7 /0 with a register), when 32 or 64 bits. */
function movDestination(d: DecodedLength): string | undefined {
  if (d.map !== 1 || d.vex || d.prefixes.includes(0x66)) return undefined;
  const wide = (d.rex & 8) !== 0;
  if (d.opcode >= 0xb8 && d.opcode <= 0xbf) return register((d.opcode & 7) | ((d.rex & 1) << 3), wide);
  if (d.opcode === 0xc7 && d.modrm !== undefined && d.modrm >> 6 === 3)
    return register((d.modrm & 7) | ((d.rex & 1) << 3), wide);
  return undefined;
}

function readUnsigned(code: Uint8Array, offset: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(code[offset + i]!);
  return v;
}

class FastInstruction implements X86Instruction {
  readonly offset: number;
  readonly length: number;
  readonly invalid = false;
  readonly immediate?: { offset: number; size: number; value: bigint };
  readonly displacement?: { offset: number; size: number };
  readonly #code: Uint8Array;
  readonly #named: { mnemonic: string; kind: Kind } | undefined;
  readonly #dest: string | undefined;
  #iced: X86Instruction | undefined;

  readonly #fallback: InstructionDecoder;

  constructor(code: Uint8Array, d: DecodedLength, fallback: InstructionDecoder) {
    this.#code = code;
    this.#fallback = fallback;
    this.offset = d.offset;
    this.length = d.length;
    if (d.immediate)
      this.immediate = { ...d.immediate, value: readUnsigned(code, d.immediate.offset, d.immediate.size) };
    if (d.displacement) this.displacement = d.displacement;
    this.#named = classify(d);
    this.#dest = movDestination(d);
  }

  #full(): X86Instruction {
    this.#iced ??= this.#fallback.decode(this.#code, this.offset, this.offset + this.length);
    return this.#iced;
  }

  get mnemonic(): string {
    return this.#named?.mnemonic ?? this.#full().mnemonic;
  }

  get kind(): Kind {
    return this.#named?.kind ?? this.#full().kind;
  }

  get text(): string {
    return this.#full().text;
  }

  get destRegister(): string | undefined {
    if (this.#dest) return this.#dest;
    return this.#full().destRegister;
  }
}

/** Our length decoder first, iced-x86 (`fallback`) for what it is not sure of. */
export class FastDecoder implements InstructionDecoder {
  readonly #fallback: InstructionDecoder;

  constructor(fallback: InstructionDecoder) {
    this.#fallback = fallback;
  }

  decode(code: Uint8Array, offset: number, end = code.length): X86Instruction {
    const d = decodeLength(code, offset, end);
    return d ? new FastInstruction(code, d, this.#fallback) : this.#fallback.decode(code, offset, end);
  }

  decodeRange(code: Uint8Array, start: number, end: number): X86Instruction[] {
    const out: X86Instruction[] = [];
    for (let at = start; at < end; ) {
      const d = decodeLength(code, at, end);
      if (!d) return this.#fallback.decodeRange(code, start, end);
      out.push(new FastInstruction(code, d, this.#fallback));
      at += d.length;
    }
    return out;
  }
}
