import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";
import { x86Decoder } from "./decoder.js";

// endbr64; nopl 0(%rax,%rax); call rel32; mov $0x939,%edx; jne rel8; lfence; xor %eax,%eax; ret; int3
const code = Uint8Array.from(Buffer.from("f30f1efa0f1f440000e800000000ba39090000750b0faee831c0c3cc", "hex"));

const icedLoaded = () =>
  Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes("iced-x86"));

test("x86Decoder() gives lengths, fields, kinds and the mnemonics it names without starting iced-x86", () => {
  const insns = x86Decoder().decodeRange(code, 0, code.length);
  assert.deepEqual(
    insns.map((i) => [i.offset, i.length, i.mnemonic, i.kind]),
    [
      [0, 4, "endbr64", "other"],
      [4, 5, "nop", "other"],
      [9, 5, "call", "call"],
      [14, 5, "mov", "other"],
      [19, 2, "jne", "jump"],
      [21, 3, "lfence", "other"],
      [24, 2, "xor", "other"],
      [26, 1, "ret", "ret"],
      [27, 1, "int3", "other"],
    ],
  );
  assert.deepEqual(insns[3]!.immediate, { offset: 15, size: 4, value: 0x939n });
  assert.equal(insns[3]!.destRegister, "edx");
  assert.equal(icedLoaded(), false, "iced-x86 was loaded");
  // What it does not name itself comes from iced-x86, on first read.
  assert.equal(insns[3]!.text, "mov $0x939,%edx");
  assert.equal(icedLoaded(), true);
});
