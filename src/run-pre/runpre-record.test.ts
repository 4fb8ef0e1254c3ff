/**
 * The run-pre record and the live comparison's sites over a real object: gcc assembles a function
 * with each kind of site the running kernel rewrites, laid out the way the kernel's macros and
 * gcc lay them out (struct alt_instr of 6.12, .smp_locks, thunk calls, a static call, endbr64).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type ElfFile, readElf } from "../elf/index.js";
import { execCheck } from "../util/exec.js";
import { compareCode } from "./compare-code.js";
import { type FunctionCode, functionCode } from "./function-code.js";
import { decodeRunPreRecord, encodeRunPreRecord, RunPreRecordError } from "./runpre-record.js";
import { SITE_KINDS } from "./site-kinds.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-runpre-record-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const ASM = `
	.text
	.globl f
	.type f,@function
f:
	endbr64
	call __fentry__
671:	lock incl counter(%rip)
661:	mov $1, %eax
662:
	call __x86_indirect_thunk_rax
	call __SCT__tp_func_foo
	cmpl $7, %eax
771:	call *pv_ops+8(%rip)
772:
	jmp __x86_return_thunk
	.size f, .-f
	.pushsection .parainstructions,"a"
	.balign 8
	.quad 771b
	.byte 5
	.byte 772b-771b
	.balign 8
	.popsection
	.pushsection .smp_locks,"a"
	.long 671b - .
	.popsection
	.pushsection .altinstructions,"a"
	.long 661b - .
	.long 6631f - .
	.long 0x00010123
	.byte 662b-661b
	.byte 6641f-6631f
	.popsection
	.pushsection .altinstr_replacement,"ax"
6631:	xor %eax, %eax
6641:
	.popsection
`;

// Offsets in f: endbr64 0, call 4, lock incl 9 (7 bytes), mov 16 (5), thunk call 21, static
// call 26, cmpl 31 (3), call *pv_ops+8(%rip) 34 (6), jmp 40; size 45.
const SITES: [number, string][] = [
  [0, "endbr"],
  [4, "fentry"],
  [9, "smp-lock"],
  [16, "alternative"],
  [21, "retpoline"],
  [26, "static-call"],
  [34, "paravirt"],
  [40, "return-thunk"],
];

let object: ElfFile;
let f: FunctionCode;

before(async () => {
  const s = join(dir, "f.s");
  const o = join(dir, "f.o");
  writeFileSync(s, ASM);
  await execCheck("gcc", ["-c", "-o", o, s]);
  object = readElf(readFileSync(o), o);
  f = functionCode(object, object.findSymbols("f")[0]!);
});

/** The function as a running kernel has it: rel32s linked, every site rewritten. */
function live(code: FunctionCode, patch: Record<number, number[]> = {}): Uint8Array {
  const b = Uint8Array.from(code.bytes);
  for (let i = 0; i < b.length; i++) if (code.linked[i]) b[i] = 0x5a;
  const rewrites: Record<number, number[]> = {
    0: [0x66, 0x0f, 0x1f, 0x00], // poison_endbr()
    4: [0x0f, 0x1f, 0x44, 0x00, 0x00], // ftrace's nop5
    9: [0x3e], // alternatives_smp_unlock(): lock -> ds
    16: [0x31, 0xc0, 0x0f, 0x1f, 0x00], // the replacement (xor) padded with a nop3
    21: [0xff, 0xd0, 0x0f, 0x1f, 0x00], // patch_retpoline(): call *%rax; nop3
    26: [0x2e, 0x2e, 0x2e, 0x31, 0xc0], // static call to __static_call_return0: xor5rax
    34: [0xe8, 1, 2, 3, 4, 0x90], // apply_paravirt(): a direct call, padded with a nop
    40: [0xc3, 0xcc, 0xcc, 0xcc, 0xcc], // patch_return(): ret; int3...
    ...patch,
  };
  for (const [at, bytes] of Object.entries(rewrites)) b.set(bytes, Number(at));
  return b;
}

test("functionCode(): each site the running kernel rewrites is found in a gcc-assembled object", () => {
  assert.equal(f.bytes.length, 45);
  assert.equal(f.sites.get(34)!.length, 6, "a paravirt site covers its len");
  assert.deepEqual(
    [...f.sites].map(([at, s]) => [at, s.kind]).sort((a, b) => Number(a[0]) - Number(b[0])),
    SITES,
  );
  assert.equal(f.sites.get(16)!.length, 5, "an alternative covers its instrlen");
  assert.ok(f.linked[5] && f.linked[12] && f.linked[22] && f.linked[27] && f.linked[36] && f.linked[41]);
});

test("compareCode(): live, every rewritten site is allowed in the form its rewrite produces", () => {
  const r = compareCode(f, { bytes: live(f) }, "live");
  assert.equal(r.mismatch, undefined, JSON.stringify(r.mismatch));
  assert.deepEqual(
    r.allowed.map((a) => [a.offset, a.kind]),
    SITES,
  );
});

test("compareCode(): against an image file, the boot-time rewrites are mismatches", () => {
  const r = compareCode(f, { bytes: live(f) }, "image");
  assert.equal(r.mismatch?.offset, 0);
  assert.match(r.mismatch!.ours, /endbr64/);
});

test("compareCode(): live, a site holding what no rewrite writes is a mismatch at that site", () => {
  const cases: [number, number[]][] = [
    [0, [0x0f, 0x1f, 0x40, 0x00]], // nop4, not the endbr poison
    [9, [0x2e]], // cs, not ds
    [16, [0x31, 0xc0, 0x48, 0x8b, 0x80]], // an instruction running past the alternative
    [21, [0xb8, 1, 0, 0, 0]], // mov, not an indirect call
    [26, [0xb8, 1, 0, 0, 0]],
    [34, [0xe8, 1, 2, 3, 4, 0x0f]], // a call, then a byte that is no whole instruction in the site
    [40, [0xc3, 0x90, 0x90, 0xcc, 0xcc]],
  ];
  for (const [at, bytes] of cases) {
    const r = compareCode(f, { bytes: live(f, { [at]: bytes }) }, "live");
    assert.equal(r.mismatch?.offset, at, `site at ${at}`);
  }
  // Outside any site: the cmpl's immediate.
  const r = compareCode(f, { bytes: live(f, { 31: [0x83, 0xf8, 0x08] }) }, "live");
  assert.equal(r.mismatch?.offset, 31);
  assert.equal(r.mismatch?.reason, "different code");
});

test("encode/decodeRunPreRecord(): a round trip keeps bytes, linked bytes and sites; the copy compares the same", () => {
  const data = encodeRunPreRecord([
    { object: "vmlinux", name: "f", sympos: 2, code: f },
    { object: "ext4", name: "f", sympos: 0, code: f },
  ]);
  const back = decodeRunPreRecord(data, "x.ko");
  assert.deepEqual(
    back.map((b) => [b.object, b.name, b.sympos]),
    [
      ["vmlinux", "f", 2],
      ["ext4", "f", 0],
    ],
  );
  const code = back[0]!.code;
  assert.deepEqual(code.bytes, Uint8Array.from(f.bytes));
  assert.deepEqual(code.linked, f.linked);
  assert.deepEqual(
    [...code.sites].map(([at, s]) => [at, s.kind, s.length]),
    [...f.sites].map(([at, s]) => [at, s.kind, s.length]).sort((a, b) => Number(a[0]) - Number(b[0])),
  );
  assert.deepEqual(
    compareCode(code, { bytes: live(f) }, "live").allowed.map((a) => a.offset),
    SITES.map(([at]) => at),
  );
  // Compact: the bytes, plus a few bytes per range and name.
  assert.ok(data.length < 2 * (f.bytes.length + 60), `${data.length} bytes`);
});

test("decodeRunPreRecord(): another version, a truncated record, an unknown kind are refused", () => {
  const data = encodeRunPreRecord([{ object: "vmlinux", name: "f", sympos: 0, code: f }]);
  const v2 = Uint8Array.from(data);
  v2[4] = 2;
  assert.throws(() => decodeRunPreRecord(v2), /version 2; this kpatch reads version 1/);
  assert.throws(() => decodeRunPreRecord(data.subarray(0, data.length - 1)), RunPreRecordError);
  assert.throws(() => decodeRunPreRecord(Uint8Array.from([...data, 0])), /trailing bytes/);
  const badKind = Uint8Array.from(data);
  badKind[badKind.length - 1] = 99;
  assert.throws(() => decodeRunPreRecord(badKind), /unknown site kind 99/);
});

test("SITE_KINDS: codes are unique and not 0 (the linked bytes' code)", () => {
  const codes = SITE_KINDS.map((k) => k.code);
  assert.equal(new Set(codes).size, codes.length);
  assert.ok(!codes.includes(0));
});
