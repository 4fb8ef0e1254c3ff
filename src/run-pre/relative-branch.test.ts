/**
 * Which short/near pairs are one branch relaxed, on gas's own encodings ({disp32} forces the near
 * form): jmp eb/e9 and jcc 7x/0f 8x of one condition, with the same prefixes; loop, jecxz and call
 * have no pair.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../test/helpers/elf-tools.js";
import { readElf } from "../elf/read-elf.js";
import { x86Decoder } from "../x86/index.js";
import { readRel, relField, sameBranchRelaxed } from "./relative-branch.js";

const FORMS = {
  jmp8: "jmp 1f",
  jmp32: "{disp32} jmp 1f",
  jle8: "jle 1f",
  jle32: "{disp32} jle 1f",
  jg32: "{disp32} jg 1f",
  bndJmp8: "bnd jmp 1f",
  bndJmp32: "{disp32} bnd jmp 1f",
  loop8: "loop 1f",
  jecxz8: "jrcxz 1f",
  call32: "call 1f",
};
type Form = keyof typeof FORMS;

/** Each form assembled alone, its branch 16 bytes before its target; bytes and decoded instruction. */
const branches = (() => {
  const names = Object.keys(FORMS) as Form[];
  const source = names.map((n) => `${n}:\n  ${FORMS[n]}\n  .skip 16, 0x90\n1:`).join("\n");
  const obj = assemble("relative-branch", `.text\n${source}\n  ret`);
  const file = readElf(obj.bytes, obj.path);
  const code = file.sections.find((s) => s.name === ".text")!.data;
  const decoded = x86Decoder().decodeRange(code, 0, code.length);
  return new Map(
    names.map((n) => {
      const at = Number(file.symbols.find((s) => s.name === n)!.value);
      const insn = decoded.find((i) => i.offset === at)!;
      const rel = relField(code, insn);
      assert.ok(rel, `${n}: a relative branch`);
      assert.equal(rel.offset + rel.size + readRel(code, rel) - at - insn.length, 16, `${n}: target`);
      return [n, { code, insn, rel }];
    }),
  );
})();

const relaxed = (a: Form, b: Form) => sameBranchRelaxed(branches.get(a)!, branches.get(b)!);

test("sameBranchRelaxed(): jmp eb/e9 and jcc 7x/0f 8x of one condition, either way round", () => {
  assert.ok(relaxed("jmp8", "jmp32"));
  assert.ok(relaxed("jmp32", "jmp8"));
  assert.ok(relaxed("jle8", "jle32"));
  assert.ok(relaxed("bndJmp8", "bndJmp32"));
});

test("sameBranchRelaxed(): another condition, another operation, other prefixes or one size: no", () => {
  assert.ok(!relaxed("jle8", "jg32"), "jle/jg");
  assert.ok(!relaxed("jmp8", "jle32"), "jmp/jle");
  assert.ok(!relaxed("bndJmp8", "jmp32"), "bnd on one side only");
  assert.ok(!relaxed("jmp8", "bndJmp32"), "bnd on the other side only");
  assert.ok(!relaxed("loop8", "jmp32"), "loop has no near form");
  assert.ok(!relaxed("jecxz8", "jmp32"), "jrcxz has no near form");
  assert.ok(!relaxed("jmp8", "call32"), "call is no jmp");
  assert.ok(!relaxed("jmp32", "jmp32"), "the same size is no relaxation");
});
