import assert from "node:assert/strict";
import { test } from "node:test";
import { compareCode } from "./compare-code.js";
import type { FunctionCode, Site } from "./function-code.js";

// endbr64; call __fentry__ (rel32 filled in); mov $1,%eax; jmp +2 (a static branch); ret; int3; int3
const CODE = [0xf3, 0x0f, 0x1e, 0xfa, 0xe8, 0, 0, 0, 0, 0xb8, 1, 0, 0, 0, 0xe9, 2, 0, 0, 0, 0xc3, 0xcc, 0xcc];
const FENTRY = 4;
const BRANCH = 14;

function ours(sites: [number, Site][] = []): FunctionCode {
  const bytes = Uint8Array.from(CODE);
  const linked = new Uint8Array(bytes.length);
  linked.fill(1, FENTRY + 1, FENTRY + 5);
  return { name: "f", file: "f.o", bytes, linked, sites: new Map(sites), weak: false };
}

const theirs = (patch: Record<number, number[]> = {}, extra: number[] = []) => {
  const b = [...CODE, ...extra];
  b.splice(FENTRY + 1, 4, 0x12, 0x34, 0x56, 0x78); // the linker's displacement
  for (const [at, bytes] of Object.entries(patch)) b.splice(Number(at), bytes.length, ...bytes);
  return Uint8Array.from(b);
};

const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const jumpSite: [number, Site] = [BRANCH, { kind: "static-branch", evidence: "__jump_table entry (key k)" }];
const fentrySite: [number, Site] = [FENTRY, { kind: "fentry", evidence: "__mcount_loc entry" }];

test("compareCode(): bytes a relocation fills in are not compared", () => {
  assert.deepEqual(compareCode(ours(), { bytes: theirs() }), { allowed: [] });
});

test("compareCode(): a static-branch site may be a nop of the same length in the kernel", () => {
  const r = compareCode(ours([jumpSite]), { bytes: theirs({ [BRANCH]: NOP5 }) });
  assert.equal(r.mismatch, undefined);
  assert.equal(r.allowed.length, 1);
  assert.equal(r.allowed[0]!.kind, "static-branch");
  assert.equal(r.allowed[0]!.offset, BRANCH);
});

test("compareCode(): the same nop where no __jump_table entry says so is a mismatch", () => {
  const r = compareCode(ours(), { bytes: theirs({ [BRANCH]: NOP5 }) });
  assert.equal(r.mismatch?.offset, BRANCH);
  assert.match(r.mismatch!.ours, /^jmp .*\(e902000000\)$/);
  assert.match(r.mismatch!.theirs, /^nop.*\(0f1f440000\)$/);
});

test("compareCode(): a static-branch site holding other code in the kernel is a mismatch", () => {
  const r = compareCode(ours([jumpSite]), { bytes: theirs({ [BRANCH]: [0xb8, 2, 0, 0, 0] }) });
  assert.equal(r.mismatch?.offset, BRANCH);
  assert.match(r.mismatch!.reason, /static-branch site/);
});

test("compareCode(): call __fentry__ may be a 5-byte nop in the kernel, at an ftrace site only", () => {
  const nopped = theirs({ [FENTRY]: NOP5 });
  assert.equal(compareCode(ours([fentrySite]), { bytes: nopped }).allowed[0]?.kind, "fentry");
  assert.equal(compareCode(ours(), { bytes: nopped }).mismatch?.offset, FENTRY);
});

test("compareCode(): a changed immediate is a mismatch at its instruction, with both sides", () => {
  const r = compareCode(ours(), { bytes: theirs({ 10: [2] }) });
  assert.deepEqual(r.mismatch, {
    offset: 9,
    ours: "mov $1,%eax (b801000000)",
    theirs: "mov $2,%eax (b802000000)",
    reason: "different code",
  });
});

test("compareCode(): sizes from a symbol table must agree", () => {
  const r = compareCode(ours(), { bytes: theirs(), size: CODE.length + 4 });
  assert.match(r.mismatch?.reason ?? "", /different sizes/);
});

test("compareCode(): without a size, code past our end makes the kernel's function longer", () => {
  const at = 0xffffffff81000000n + BigInt(CODE.length);
  // Padding, then an aligned function kallsyms has no name for: not ours, fine.
  const pad = Array(10).fill(0x90);
  const aligned = compareCode(ours(), { bytes: theirs(), tail: Uint8Array.from([...pad, 0xc3]), tailAt: at });
  assert.equal(aligned.mismatch, undefined);
  // Code right at our end: the kernel's function goes on.
  const longer = compareCode(ours(), {
    bytes: theirs(),
    tail: Uint8Array.from([0x31, 0xc0, 0xc3]),
    tailAt: at,
  });
  assert.match(longer.mismatch?.reason ?? "", /longer/);
  assert.equal(longer.mismatch?.offset, CODE.length);
});

test("compareCode(): an aligned nameless function whose ftrace site is nopped is another function, not ours going on", () => {
  // Debian 6.1's loadavg_proc_show: int3 padding to 16, then `nop5; ret; int3...` (live: its
  // `call __fentry__; jmp __x86_return_thunk` rewritten); CODE is 22 bytes, so 10 of padding.
  const at = 0xffffffff81000000n + BigInt(CODE.length);
  const tail = [...Array(10).fill(0xcc), 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc];
  const r = compareCode(ours(), { bytes: theirs(), tail: Uint8Array.from(tail), tailAt: at }, "live");
  assert.equal(r.mismatch, undefined);
  // The same ret one byte off the alignment, after nops: the kernel's function goes on.
  const off = [...Array(11).fill(0xcc), 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3];
  const longer = compareCode(ours(), { bytes: theirs(), tail: Uint8Array.from(off), tailAt: at }, "live");
  assert.match(longer.mismatch?.reason ?? "", /longer/);
});

test("compareCode(): a runtime constant (runtime_ptr_/runtime_shift_ entry) may hold boot's value, live only", async () => {
  const { compileC } = await import("../../test/helpers/elf-tools.js");
  const { readElf } = await import("../elf/read-elf.js");
  const { functionCode } = await import("./function-code.js");
  // arch/x86/include/asm/runtime-const.h's two forms, as gcc assembles them in a 6.12 object.
  const obj = compileC(
    "runtime-const",
    `unsigned long user_ptr_max(void) {
  unsigned long r;
  asm("movabs $0x0123456789abcdef,%0\\n1:\\n\\t.pushsection runtime_ptr_USER_PTR_MAX,\\"a\\"\\n\\t.long 1b - 8 - .\\n\\t.popsection" : "=r"(r));
  return r;
}
unsigned int d_hash(unsigned int h) {
  asm("shrl $12,%k0\\n1:\\n\\t.pushsection runtime_shift_d_hash_shift,\\"a\\"\\n\\t.long 1b - 1 - .\\n\\t.popsection" : "+r"(h));
  return h;
}`,
  );
  const file = readElf(obj.bytes, obj.path);
  for (const [name, imm, boot] of [
    [
      "user_ptr_max",
      [0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01],
      [0, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0],
    ],
    ["d_hash", [12], [20]],
  ] as const) {
    const code = functionCode(file, file.symbols.find((s) => s.name === name)!);
    const at = code.bytes.findIndex((_, i) => imm.every((b, k) => code.bytes[i + k] === b));
    assert.ok(at > 0, `${name}: the placeholder is in the code`);
    const booted = Uint8Array.from(code.bytes);
    booted.set(boot, at);
    const live = compareCode(code, { bytes: booted }, "live");
    assert.equal(live.mismatch, undefined, `${name}: ${live.mismatch?.reason}`);
    assert.deepEqual(
      live.allowed.map((a) => a.kind),
      ["runtime-const"],
    );
    // The image keeps the placeholder: there the same difference is a mismatch.
    assert.ok(compareCode(code, { bytes: booted }, "image").mismatch, `${name}: image mode refuses it`);
    // Another change to the same instruction is no runtime constant's.
    const other = Uint8Array.from(booted);
    other[at - 1] = (other[at - 1] ?? 0) ^ 1;
    assert.ok(compareCode(code, { bytes: other }, "live").mismatch, `${name}: its opcode may not change`);
  }
});
