/**
 * x86-64 instruction lengths without a disassembler: prefixes, REX, the one-byte, 0F, 0F38 and
 * 0F3A opcode maps, VEX and EVEX, ModRM/SIB, displacement and immediate sizes (Intel SDM vol. 2,
 * appendix A). Enough for kernel code; anything it is not sure of (3DNow!, XOP, a 16-bit branch,
 * an opcode invalid in 64-bit mode, bytes past the end) is undefined, and the caller asks
 * iced-x86 instead. Cross-checked against iced-x86 on real kernel code (length-decoder.test.ts).
 */

/** What the length decoder saw of one instruction; offsets are absolute in the code array. */
export interface DecodedLength {
  offset: number;
  length: number;
  /** 1 (one-byte map), 2 (0F), 3 (0F38), 4 (0F3A); VEX/EVEX maps map onto these. */
  map: number;
  opcode: number;
  /** The ModRM byte, when the instruction has one. */
  modrm?: number;
  rex: number;
  /** Legacy prefixes seen (0x66, 0xf3, 0xf0, ...). */
  prefixes: number[];
  vex: boolean;
  displacement?: { offset: number; size: number };
  immediate?: { offset: number; size: number };
}

// One-byte opcodes with a ModRM byte (bit set) and those invalid in 64-bit mode.
const MODRM_1 = bits([
  [0x00, 0x03],
  [0x08, 0x0b],
  [0x10, 0x13],
  [0x18, 0x1b],
  [0x20, 0x23],
  [0x28, 0x2b],
  [0x30, 0x33],
  [0x38, 0x3b],
  [0x63, 0x63],
  [0x69, 0x69],
  [0x6b, 0x6b],
  [0x80, 0x8f],
  [0xc0, 0xc1],
  [0xc6, 0xc7],
  [0xd0, 0xd3],
  [0xd8, 0xdf],
  [0xf6, 0xf7],
  [0xfe, 0xff],
]);
const INVALID_1 = new Set([
  0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0x82, 0x9a, 0xce, 0xd4, 0xd5,
  0xd6, 0xea,
]);
// 0F opcodes without a ModRM byte; those with ModRM plus an imm8; those not handled here.
const NO_MODRM_2 = new Set([
  0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77, 0xa0, 0xa1, 0xa2, 0xa8,
  0xa9, 0xaa, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
]);
const IMM8_2 = new Set([0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6]);
const UNSURE_2 = new Set([
  0x04, 0x0a, 0x0c, 0x0e, 0x0f, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x7a, 0x7b,
  0xa6, 0xa7,
]);

function bits(ranges: [number, number][]): Uint8Array {
  const t = new Uint8Array(256);
  for (const [a, b] of ranges) for (let i = a; i <= b; i++) t[i] = 1;
  return t;
}

const isLegacyPrefix = (b: number): boolean =>
  b === 0x66 ||
  b === 0x67 ||
  b === 0xf0 ||
  b === 0xf2 ||
  b === 0xf3 ||
  b === 0x2e ||
  b === 0x36 ||
  b === 0x3e ||
  b === 0x26 ||
  b === 0x64 ||
  b === 0x65;

/** The instruction at `offset` (not past `end`), or undefined when unsure. */
// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: the x86 encoding is one decision tree (prefixes, REX/VEX/EVEX, map, ModRM/SIB, displacement, immediate), read in the order the CPU reads it; split, the order would be lost
export function decodeLength(code: Uint8Array, offset: number, end = code.length): DecodedLength | undefined {
  const limit = Math.min(end, code.length, offset + 15);
  let at = offset;
  const prefixes: number[] = [];
  while (at < limit && isLegacyPrefix(code[at]!)) prefixes.push(code[at++]!);
  let rex = 0;
  if (at < limit && (code[at]! & 0xf0) === 0x40) rex = code[at++]!;
  if (at >= limit) return undefined;
  // A prefix or a second REX after a REX: the REX is ignored, a case left to iced.
  if (rex && (isLegacyPrefix(code[at]!) || (code[at]! & 0xf0) === 0x40)) return undefined;
  const osize = prefixes.includes(0x66) && !(rex & 8) ? 2 : 4;
  const asize = prefixes.includes(0x67) ? 4 : 8;
  let map = 1;
  let opcode = code[at++]!;
  let vex = false;
  let hasModrm: boolean;
  let imm = 0;
  if (opcode === 0xc4 || opcode === 0xc5 || opcode === 0x62) {
    // VEX (C4: 3 bytes, C5: 2) and EVEX (62: 4): always so in 64-bit mode.
    if (rex !== 0 || prefixes.some((p) => p === 0x66 || p === 0xf2 || p === 0xf3 || p === 0xf0))
      return undefined;
    vex = true;
    if (opcode === 0xc5) map = 2;
    else {
      const select = code[at]! & (opcode === 0x62 ? 0x07 : 0x1f);
      if (select < 1 || select > 3) return undefined; // EVEX maps 5/6 (FP16) and beyond
      map = select + 1;
    }
    at += opcode === 0xc5 ? 1 : opcode === 0xc4 ? 2 : 3;
    if (at >= limit) return undefined;
    opcode = code[at++]!;
    hasModrm = !(map === 2 && opcode === 0x77);
    if (map === 4 || (map === 2 && IMM8_2.has(opcode))) imm = 1;
  } else if (opcode === 0x0f) {
    if (at >= limit) return undefined;
    opcode = code[at++]!;
    if (opcode === 0x38 || opcode === 0x3a) {
      map = opcode === 0x38 ? 3 : 4;
      if (at >= limit) return undefined;
      opcode = code[at++]!;
      hasModrm = true;
      imm = map === 4 ? 1 : 0;
    } else {
      map = 2;
      if (UNSURE_2.has(opcode)) return undefined;
      if (opcode >= 0x80 && opcode <= 0x8f) {
        if (osize === 2) return undefined; // a 16-bit jcc: iced knows what the CPU does
        hasModrm = false;
        imm = 4;
      } else {
        hasModrm = !NO_MODRM_2.has(opcode);
        if (IMM8_2.has(opcode)) imm = 1;
      }
    }
  } else {
    if (INVALID_1.has(opcode)) return undefined;
    hasModrm = MODRM_1[opcode] === 1;
    const z = osize; // imm16/32 by operand size
    if (opcode === 0x8f && at < limit && (code[at]! & 0x38) !== 0) return undefined; // XOP
    if (opcode < 0x40 && (opcode & 7) === 4) imm = 1;
    else if (opcode < 0x40 && (opcode & 7) === 5) imm = z;
    else if (opcode === 0x68 || opcode === 0x69 || opcode === 0x81 || opcode === 0xa9 || opcode === 0xc7)
      imm = z;
    else if (opcode === 0x6a || opcode === 0x6b || opcode === 0x80 || opcode === 0x83 || opcode === 0xa8)
      imm = 1;
    else if (opcode >= 0x70 && opcode <= 0x7f) imm = 1;
    else if (opcode >= 0xe0 && opcode <= 0xe7) imm = 1;
    else if (opcode === 0xcd || opcode === 0xc0 || opcode === 0xc1 || opcode === 0xc6 || opcode === 0xeb)
      imm = 1;
    else if (opcode >= 0xb0 && opcode <= 0xb7) imm = 1;
    else if (opcode >= 0xb8 && opcode <= 0xbf) imm = rex & 8 ? 8 : z;
    else if (opcode === 0xc2 || opcode === 0xca) imm = 2;
    else if (opcode === 0xc8) imm = 3;
    else if (opcode >= 0xa0 && opcode <= 0xa3)
      imm = asize; // moffs
    else if (opcode === 0xe8 || opcode === 0xe9) {
      if (osize === 2) return undefined;
      imm = 4;
    }
    // xbegin/xabort, and the groups' encodings that are invalid (C6/C7 /1-7, FE /2-7, FF /7).
    const reg = at < limit ? (code[at]! >> 3) & 7 : 0;
    if ((opcode === 0xc6 || opcode === 0xc7) && reg !== 0) return undefined;
    if ((opcode === 0xfe && reg > 1) || (opcode === 0xff && reg === 7)) return undefined;
  }
  let modrm: number | undefined;
  let displacement: DecodedLength["displacement"];
  if (hasModrm) {
    if (at >= limit) return undefined;
    modrm = code[at++]!;
    const mod = modrm >> 6;
    const rm = modrm & 7;
    const reg = (modrm >> 3) & 7;
    if (map === 1 && (opcode === 0xf6 || opcode === 0xf7) && reg < 2) imm = opcode === 0xf6 ? 1 : osize;
    // mov to/from control and debug registers: the mod bits are ignored, always registers.
    const registersOnly = map === 2 && opcode >= 0x20 && opcode <= 0x23;
    if (mod !== 3 && !registersOnly) {
      let disp = mod === 1 ? 1 : mod === 2 ? 4 : 0;
      if (rm === 4) {
        if (at >= limit) return undefined;
        const sib = code[at++]!;
        if (mod === 0 && (sib & 7) === 5) disp = 4;
      } else if (mod === 0 && rm === 5) disp = 4;
      if (disp) displacement = { offset: at, size: disp };
      at += disp;
    }
  }
  let immediate: DecodedLength["immediate"];
  if (imm) immediate = { offset: at, size: imm === 3 ? 2 : imm };
  at += imm;
  if (at > limit) return undefined;
  const out: DecodedLength = { offset, length: at - offset, map, opcode, rex, prefixes, vex };
  if (modrm !== undefined) out.modrm = modrm;
  if (displacement) out.displacement = displacement;
  if (immediate) out.immediate = immediate;
  return out;
}
