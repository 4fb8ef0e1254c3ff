/**
 * The comparison modulo alignment padding, on gcc's own code: one function with a 64-byte aligned
 * loop, compiled alone (at offset 0 of its section, as kpatch-build's objects have it) and after a
 * filler function (elsewhere, as in vmlinux), so gcc pads the loop with other NOPs and the branch
 * over it gets another displacement.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble, compileC } from "../../test/helpers/elf-tools.js";
import { readElf } from "../elf/read-elf.js";
import { type X86Instruction, x86Decoder } from "../x86/index.js";
import { compareCode } from "./compare-code.js";
import { type FunctionCode, functionCode } from "./function-code.js";
import type { TheirCode } from "./site-forms.js";

const SUM = `int sum(const int *a, int n)
{
	int s = 0;
	for (int i = 0; i < n; i++) {
		s += a[i] * 3;
		if (s > 1000)
			s -= a[i] >> 1;
	}
	return s;
}
`;
const FILLER = "int filler(int x) { return x * 7 + 3; }\n";
const ALIGN = ["-falign-loops=64", "-falign-jumps=64", "-falign-functions=16"];

function sumOf(name: string, source: string, flags: string[]): FunctionCode {
  const obj = compileC(name, source, [...ALIGN, ...flags]);
  const file = readElf(obj.bytes, obj.path);
  return functionCode(file, file.symbols.find((s) => s.name === "sum")!);
}

function built(flags: string[] = []) {
  const ours = sumOf(`padded-alone${flags.join("")}`, SUM, flags);
  const other = sumOf(`padded-after${flags.join("")}`, FILLER + SUM, ["-fno-function-sections", ...flags]);
  return {
    ours,
    other,
    theirs: (): TheirCode => ({ bytes: Uint8Array.from(other.bytes), size: other.bytes.length }),
  };
}

const decode = (b: Uint8Array): X86Instruction[] => x86Decoder().decodeRange(b, 0, b.length);
const isNop = (i: X86Instruction) => i.mnemonic === "nop";

test("compareCode(): the same function at another offset matches modulo alignment NOPs", () => {
  const { ours, theirs } = built();
  const t = theirs();
  assert.notDeepEqual(ours.bytes, t.bytes, "gcc padded the two copies differently");
  const r = compareCode(ours, t);
  assert.equal(r.mismatch, undefined, r.mismatch?.reason);
  assert.ok(r.padding && r.padding.bytes > 0, "it says how many NOP bytes differed");
  assert.ok(r.padding.branches >= 1, "a branch over the padding has another displacement");
});

test("compareCode(): the kernel's copy longer than ours, up to the next symbol (kallsyms' extent)", () => {
  const { ours: longer, other: shorter } = built();
  // Ours is the shorter copy now; the kernel's (the longer one) is at a 64-byte boundary and
  // followed by int3 padding to 16 bytes, then the next symbol.
  const k = longer.bytes;
  const pad = (16 - (k.length % 16)) % 16;
  const kernel = Uint8Array.from([...k, ...Array(pad).fill(0xcc)]);
  const size = shorter.bytes.length;
  const base = 0xffffffff81000000n;
  const theirs = {
    bytes: kernel.subarray(0, size + 15),
    tail: kernel.subarray(size),
    tailAt: base + BigInt(size),
  };
  const r = compareCode(shorter, theirs);
  assert.equal(r.mismatch, undefined, r.mismatch?.reason);
  assert.ok(r.padding && r.padding.bytes > 0);
  // Code after the kernel's last instruction that is not padding: the kernel's function is longer.
  kernel[k.length] = 0x50;
  const longerStill = compareCode(shorter, { ...theirs, tail: kernel.subarray(size) });
  assert.match(longerStill.mismatch?.reason ?? "", /the kernel's function is longer/);
});

test("compareCode(): a changed instruction is refused, at its offset, as by the exact comparison", () => {
  const { ours, theirs } = built();
  const t = theirs();
  const cmp = decode(t.bytes).find((i) => i.immediate?.value === 1000n)!;
  t.bytes[cmp.immediate!.offset] = 0xe9; // cmp $1000 -> cmp $1001
  const r = compareCode(ours, t);
  const mine = decode(ours.bytes).find((i) => i.immediate?.value === 1000n)!;
  assert.equal(r.mismatch?.offset, mine.offset);
  assert.equal(r.mismatch?.reason, "different code");
  assert.match(r.mismatch!.theirs, /\$0x3e9/i);
  assert.equal(r.padding, undefined);
});

test("compareCode(): a branch to another instruction is refused, even one that lands on an instruction", () => {
  const { ours, theirs } = built();
  const t = theirs();
  const list = decode(t.bytes);
  // The first rel8 branch forward: retarget it to the instruction after its target.
  const jcc = list.find((i) => i.kind === "jump" && i.length === 2 && (t.bytes[i.offset + 1]! & 0x80) === 0)!;
  const target = jcc.offset + 2 + t.bytes[jcc.offset + 1]!;
  const next = list.find((i) => i.offset > target && !isNop(i))!;
  t.bytes[jcc.offset + 1] = next.offset - jcc.offset - 2;
  const r = compareCode(ours, t);
  assert.match(r.mismatch?.reason ?? "", /the branch's target is another instruction/);
  assert.equal(r.mismatch?.offset, jcc.offset, "the branch is before any padding: same offset in both");
});

test("compareCode(): an extra instruction in place of padding is refused", () => {
  const { ours, theirs } = built();
  const t = theirs();
  const nop = decode(t.bytes).find(isNop)!;
  t.bytes[nop.offset] = 0x50; // push %rax, then the NOP's other bytes as one-byte NOPs
  t.bytes.fill(0x90, nop.offset + 1, nop.offset + nop.length);
  const r = compareCode(ours, t);
  assert.ok(r.mismatch, "push %rax is no padding");
  assert.match(r.mismatch!.theirs, /^push %rax/);
  assert.equal(r.padding, undefined);
});

test("compareCode(): ftrace's nop in the kernel and padding together, live (kpatch load's path)", () => {
  // -pg -mfentry: call __fentry__ at the entry, an fentry site (its relocation); ftrace nops it at boot.
  const { ours, theirs } = built(["-pg", "-mfentry", "-fno-pie"]);
  const t = theirs();
  assert.equal(t.bytes[0], 0xe8, "the kernel's copy starts with the call");
  t.bytes.set([0x0f, 0x1f, 0x44, 0x00, 0x00], 0);
  const r = compareCode(ours, t, "live");
  assert.equal(r.mismatch, undefined, r.mismatch?.reason);
  assert.deepEqual(
    r.allowed.map((a) => [a.kind, a.offset]),
    [["fentry", 0]],
  );
  assert.ok(r.padding && r.padding.bytes > 0);
  // Its call made some other instruction is no ftrace rewrite.
  t.bytes.set([0xb8, 1, 0, 0, 0], 0);
  assert.match(compareCode(ours, t, "live").mismatch?.reason ?? "", /fentry site/);
});

/** `name` assembled from `body`, `skip` bytes of int3 into .text (`after`: sections after it). */
function asmFunction(obj: string, name: string, skip: number, body: string, after = ""): FunctionCode {
  const built = assemble(
    obj,
    `.text
.skip ${skip}, 0xcc
.globl ${name}
.type ${name}, @function
${name}:
${body}
.size ${name}, .-${name}${after}`,
  );
  const file = readElf(built.bytes, built.path);
  return functionCode(file, file.symbols.find((s) => s.name === name)!);
}

/** f: a branch over a 64-byte aligned loop; `skip` bytes before f, and how the branch is encoded. */
function asmF(name: string, skip: number, jle: string) {
  return asmFunction(
    name,
    "f",
    skip,
    `  test %esi, %esi
  ${jle} 2f
  xor %eax, %eax
  .p2align 6
1:
  add $1, %eax
  dec %esi
  jne 1b
  ret
2:
  xor %eax, %eax
  ret`,
  );
}

test("compareCode(): a branch forced rel32 in the kernel, the same jle to the same target, is relaxed", () => {
  const ours = asmF("rel8", 0, "jle");
  const same = asmF("rel8-moved", 16, "jle");
  const moved = compareCode(ours, { bytes: same.bytes, size: same.bytes.length });
  assert.equal(moved.mismatch, undefined, moved.mismatch?.reason);
  assert.ok(moved.padding && moved.padding.bytes > 0);
  assert.equal(moved.padding.relaxed, 0);
  const wide = asmF("rel32-moved", 16, "{disp32} jle");
  const r = compareCode(ours, { bytes: wide.bytes, size: wide.bytes.length });
  assert.equal(r.mismatch, undefined, r.mismatch?.reason);
  assert.equal(r.padding?.relaxed, 1);
});

/**
 * h: a jle and a jmp over 18 instructions and a 64-byte aligned loop, `skip` bytes into its
 * section. At 0 the loop's padding is 4 bytes and both fit rel8; 6 bytes on, it is 58 and GNU as
 * relaxes both to rel32 (0f 8e, e9) itself: the same source, two layouts, as in the kernel.
 */
function asmH(name: string, skip: number, jle = "jle 2f", jmp = "jmp 3f") {
  return asmFunction(
    name,
    "h",
    skip,
    `  test %esi, %esi
  ${jle}
  ${jmp}
  .rept 18
  add $1, %ecx
  .endr
  .p2align 6
1:
  add $1, %eax
  dec %esi
  jne 1b
  ret
  add $1, %ecx
  add $1, %ecx
2:
  xor %eax, %eax
  ret
3:
  mov $1, %eax
  ret`,
  );
}

const asTheirs = (f: FunctionCode): TheirCode => ({ bytes: f.bytes, size: f.bytes.length });

test("compareCode(): jle and jmp relaxed to rel32 by gas across more padding match, counted as relaxed", () => {
  const ours = asmH("relax-alone", 0);
  const moved = asmH("relax-moved", 6);
  assert.deepEqual([...ours.bytes.subarray(2, 6)], [0x7e, 0x4a, 0xeb, 0x4b], "ours: jle/jmp rel8");
  assert.deepEqual([...moved.bytes.subarray(2, 4)], [0x0f, 0x8e], "the kernel's: jle rel32");
  assert.equal(moved.bytes[8], 0xe9, "the kernel's: jmp rel32");
  const r = compareCode(ours, asTheirs(moved));
  assert.equal(r.mismatch, undefined, r.mismatch?.reason);
  assert.equal(r.padding?.relaxed, 2);
  assert.ok(r.padding.bytes > 0);
  // The other way round (ours relaxed, the kernel's short) too.
  const back = compareCode(moved, asTheirs(ours));
  assert.equal(back.mismatch, undefined, back.mismatch?.reason);
  assert.equal(back.padding?.relaxed, 2);
});

test("compareCode(): a relaxed jcc of another condition is refused", () => {
  const ours = asmH("cond-alone", 0);
  const other = asmH("cond-moved", 6, "jg 2f");
  assert.deepEqual([...other.bytes.subarray(2, 4)], [0x0f, 0x8f], "the kernel's: jg rel32");
  const r = compareCode(ours, asTheirs(other));
  assert.equal(r.mismatch?.offset, 2);
  assert.match(r.mismatch?.reason ?? "", /rel8 here, rel32 in the kernel, not the same jmp\/jcc relaxed/);
  assert.match(r.mismatch!.theirs, /^jg /);
  assert.equal(r.padding, undefined);
});

test("compareCode(): a relaxed branch to another target is refused", () => {
  const ours = asmH("target-alone", 0);
  const other = asmH("target-moved", 6, "jle 3f");
  assert.deepEqual([...other.bytes.subarray(2, 4)], [0x0f, 0x8e]);
  const r = compareCode(ours, asTheirs(other));
  assert.equal(r.mismatch?.offset, 2);
  assert.match(r.mismatch?.reason ?? "", /the branch's target is another instruction/);
  assert.equal(r.padding, undefined);
});

test("compareCode(): a relaxed branch with other prefixes (bnd) is refused", () => {
  const ours = asmH("bnd-alone", 0, "jle 2f", "bnd jmp 3f");
  assert.deepEqual([...ours.bytes.subarray(4, 6)], [0xf2, 0xeb], "ours: bnd jmp rel8");
  const r = compareCode(ours, asTheirs(asmH("bnd-moved", 6)));
  assert.equal(r.mismatch?.offset, 4);
  assert.match(r.mismatch?.reason ?? "", /not the same jmp\/jcc relaxed/);
  // With the prefix on both, relaxed.
  const both = compareCode(ours, asTheirs(asmH("bnd-both", 6, "jle 2f", "bnd jmp 3f")));
  assert.equal(both.mismatch, undefined, both.mismatch?.reason);
  assert.equal(both.padding?.relaxed, 2);
});

test("checkRecorded(): a match modulo padding is reported, in --json and in text (kpatch load's report)", async () => {
  const { checkRecorded } = await import("./run-pre-check.js");
  const { formatRunPre, formatRunPreSummary, paddingLines } = await import("./run-pre-format.js");
  const { ours, other } = built();
  const report = checkRecorded(
    [{ object: "vmlinux", name: "sum", sympos: 0, code: ours }],
    () => ({
      source: "the kernel",
      count: () => 1,
      find: () => ({ address: 0xffffffff81000010n, bytes: other.bytes, size: other.bytes.length }),
    }),
    "live",
  );
  assert.equal(report.matched, 1);
  const f = JSON.parse(JSON.stringify(report)).functions[0];
  assert.equal(f.status, "matched");
  assert.ok(f.padding.bytes > 0 && f.padding.branches > 0, JSON.stringify(f.padding));
  assert.equal(f.padding.relaxed, 0);
  const line = `equal but for ${f.padding.bytes} bytes of alignment NOPs`;
  assert.match(formatRunPreSummary(report), /1 of the matches only modulo alignment NOPs/);
  assert.deepEqual(paddingLines(report), [
    `vmlinux: sum (vmlinux at 0xffffffff81000010): ${line} (${f.padding.branches} branch${f.padding.branches === 1 ? "" : "es"} displaced across them)`,
  ]);
  assert.ok(formatRunPre(report).includes(line));
});

/**
 * g: a static-branch site (its __jump_table entry, as arch_static_branch() writes it) at the head
 * of a 64-byte aligned loop, then a `jmp rel32` of the same length: the kernel's site is the
 * nop after the padding, not the jmp after it, and the matcher must find that out.
 */
function asmG(name: string, skip: number, site: string) {
  return asmFunction(
    name,
    "g",
    skip,
    `  test %esi, %esi
  jle 3f
  .p2align 6
1:
  ${site}
2:
  .byte 0xe9
  .long 3f - . - 4
  dec %esi
3:
  ret`,
    `
.pushsection __jump_table, "aw"
  .long 1b - ., 2b - .
  .quad key
.popsection`,
  );
}

test("compareCode(): a site just after padding lines up with the kernel's site, not the next jmp of its length", () => {
  const nop5 = ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00";
  // The object's form: a jmp rel32 (HAVE_JUMP_LABEL_HACK, "objtool NOPs this").
  const ours = asmG("site-alone", 0, ".byte 0xe9\n  .long 3f - . - 4");
  assert.deepEqual(
    [...ours.sites.values()].map((s) => s.kind),
    ["static-branch"],
  );
  // In the image: objtool made it a nop; the kernel's copy sits 16 bytes further on.
  const image = asmG("site-moved", 16, nop5);
  const r = compareCode(ours, { bytes: image.bytes, size: image.bytes.length });
  assert.equal(r.mismatch, undefined, r.mismatch?.reason);
  assert.deepEqual(
    r.allowed.map((a) => a.kind),
    ["static-branch"],
  );
  assert.ok(r.padding && r.padding.bytes > 0);
  // The same with a push where the site's nop was: refused.
  const changed = asmG("site-changed", 16, ".byte 0x50, 0x90, 0x90, 0x90, 0x90");
  assert.ok(compareCode(ours, { bytes: changed.bytes, size: changed.bytes.length }).mismatch);
});
