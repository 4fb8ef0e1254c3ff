import assert from "node:assert/strict";
import { test } from "node:test";
import { findInstructionAt, x86Decoder } from "./decoder.js";

// endbr64; call rel32; mov $0x1234,%esi; mov $0,%rsi; ret
const code = Uint8Array.of(
  0xf3,
  0x0f,
  0x1e,
  0xfa,
  0xe8,
  0,
  0,
  0,
  0,
  0xbe,
  0x34,
  0x12,
  0,
  0,
  0x48,
  0xc7,
  0xc6,
  0,
  0,
  0,
  0,
  0xc3,
);

test("decodeRange() gives lengths, kinds and text the way objdump prints them", () => {
  const insns = x86Decoder().decodeRange(code, 0, code.length);
  assert.deepEqual(
    insns.map((i) => [i.offset, i.length, i.mnemonic, i.kind]),
    [
      [0, 4, "endbr64", "other"],
      [4, 5, "call", "call"],
      [9, 5, "mov", "other"],
      [14, 7, "mov", "other"],
      [21, 1, "ret", "ret"],
    ],
  );
  assert.equal(insns[2]!.text, "mov $0x1234,%esi");
  assert.deepEqual(insns[2]!.immediate, { offset: 10, size: 4, value: 0x1234n });
  assert.equal(insns[2]!.destRegister, "esi");
});

test("findInstructionAt() finds the instruction around an offset inside it", () => {
  assert.equal(findInstructionAt(code, 0, code.length, 12)?.offset, 9);
  assert.equal(findInstructionAt(code, 0, code.length, 99), undefined);
});
