import assert from "node:assert/strict";
import { test } from "node:test";
import { RUNTIME_PTR_PLACEHOLDER, rewriteRuntimePtrSite } from "./runtime-const.js";

/** `movabs $placeholder, %reg` as gas assembles it: REX.W(+B) B8+r imm64. */
function movabs(rex: number, op: number): Uint8Array {
  const code = new Uint8Array(12);
  code.set([0x90, rex, op], 0);
  new DataView(code.buffer).setBigUint64(3, RUNTIME_PTR_PLACEHOLDER, true);
  code[11] = 0xc3;
  return code;
}

test("runtime_const_ptr() into %rdx becomes mov 0(%rip),%rdx and a 3-byte NOP", () => {
  const code = movabs(0x48, 0xba);
  assert.equal(rewriteRuntimePtrSite(code, 3), 4);
  assert.deepEqual([...code], [0x90, 0x48, 0x8b, 0x15, 0, 0, 0, 0, 0x0f, 0x1f, 0x00, 0xc3]);
});

test("runtime_const_ptr() into %r9 keeps the register (REX.B becomes REX.R)", () => {
  const code = movabs(0x49, 0xb9);
  assert.equal(rewriteRuntimePtrSite(code, 3), 4);
  assert.deepEqual([...code.subarray(1, 4)], [0x4c, 0x8b, 0x0d]);
});

test("anything but the placeholder movabs is left alone, with the reason", () => {
  const code = movabs(0x48, 0xba);
  code[5] = 0x42;
  const before = [...code];
  assert.match(String(rewriteRuntimePtrSite(code, 3)), /placeholder/);
  assert.match(String(rewriteRuntimePtrSite(movabs(0x48, 0x8b), 3)), /not a movabs/);
  assert.deepEqual([...code], before);
});
