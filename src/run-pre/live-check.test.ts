import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { PatchMetadata } from "../kernel/patch-metadata.js";
import { KernelSymbols } from "../kernel-image/index.js";
import type { Site } from "./function-code.js";
import { Kcore, KcoreError } from "./kcore.js";
import { checkAgainstKallsyms, compareLive, labelCalledHelpers } from "./live-check.js";
import type { RunPreReport } from "./run-pre-check.js";
import type { RecordedFunction } from "./runpre-record.js";

const KALLSYMS = [
  "ffffffff81000100 t cmdline_proc_show",
  "ffffffff81000200 t show_val_kb",
  "ffffffff81000300 t m_start",
  "ffffffff81000400 t m_start",
  "ffffffffc0000000 t ext4_fn\t[ext4]",
  "",
].join("\n");
const parsed = (text: string) => KernelSymbols.fromProcKallsymsByObject(text);

function meta(objects: [string, [string, number][]][]): PatchMetadata {
  return {
    objects: objects.map(([name, fns]) => ({
      name,
      functions: fns.map(([n, sympos]) => ({ name: n, sympos, newFunction: `livepatch_${n}` })),
      callbacks: {},
    })),
    replace: true,
    states: [],
  };
}

test("checkAgainstKallsyms(): functions where the livepatch core looks pass", () => {
  const r = checkAgainstKallsyms(
    meta([
      [
        "vmlinux",
        [
          ["cmdline_proc_show", 0],
          ["m_start", 2],
        ],
      ],
      ["ext4", [["ext4_fn", 0]]],
    ]),
    parsed(KALLSYMS),
  );
  assert.deepEqual(r, { checked: 3, problems: [], notes: [] });
});

test("checkAgainstKallsyms(): a missing name, sympos 0 of a duplicate, a sympos past the last are named", () => {
  const r = checkAgainstKallsyms(
    meta([
      [
        "vmlinux",
        [
          ["cmdline_proc_show.isra.0", 0],
          ["m_start", 0],
          ["m_start", 3],
        ],
      ],
    ]),
    parsed(KALLSYMS),
  );
  assert.equal(r.checked, 0);
  assert.deepEqual(r.problems, [
    "vmlinux: cmdline_proc_show.isra.0: the running kernel has no cmdline_proc_show.isra.0",
    "vmlinux: m_start: the running kernel has 2 functions of that name (sympos 0 needs one)",
    "vmlinux: m_start,3: the running kernel has only 2 functions of that name",
  ]);
});

test("checkAgainstKallsyms(): a target module not loaded is left to the kernel, and said so", () => {
  const r = checkAgainstKallsyms(meta([["xfs", [["xfs_fn", 0]]]]), parsed(KALLSYMS));
  assert.deepEqual(r.problems, []);
  assert.match(r.notes[0] ?? "", /xfs is not loaded/);
});

test("checkAgainstKallsyms(): many target objects cost one parse of kallsyms, not one per object", () => {
  // A kernel-sized kallsyms (150,000 lines) and 100 loaded target modules of 20 functions each.
  const lines: string[] = [];
  for (let i = 0; i < 150_000; i++) lines.push(`ffffffff8${i.toString(16).padStart(7, "0")} t f${i}`);
  const targets = Array.from({ length: 100 }, (_, m) => `mod${m}`);
  for (const t of targets) for (let f = 0; f < 20; f++) lines.push(`ffffffffc0000000 t ${t}_f${f}\t[${t}]`);
  const text = `${lines.join("\n")}\n`;
  const fns = (t: string): [string, number][] => Array.from({ length: 20 }, (_, f) => [`${t}_f${f}`, 0]);
  const timed = (objects: string[]) => {
    const started = performance.now();
    const r = checkAgainstKallsyms(meta(objects.map((t) => [t, fns(t)])), parsed(text));
    return { r, ms: performance.now() - started };
  };
  const one = timed(targets.slice(0, 1));
  const all = timed(targets);
  assert.equal(all.r.checked, 2000);
  assert.deepEqual(all.r.problems, []);
  // One pass: 100 objects cost about what one does (was 100 passes: about 100 times as long).
  assert.ok(
    all.ms < one.ms * 5 + 500,
    `100 objects took ${all.ms.toFixed(0)} ms, one took ${one.ms.toFixed(0)} ms`,
  );
});

/** An ELF core file laid out as fs/proc/kcore.c makes it: PT_NOTE, then PT_LOADs by address. */
function elfCore(segments: { vaddr: bigint; data: Uint8Array }[]): Buffer {
  const phnum = segments.length + 1;
  let offset = 64 + 56 * phnum;
  const eh = Buffer.alloc(64);
  eh.writeUInt32BE(0x7f454c46, 0);
  eh[4] = 2; // ELFCLASS64
  eh[5] = 1; // little-endian
  eh[6] = 1;
  eh.writeUInt16LE(4, 16); // ET_CORE
  eh.writeUInt16LE(62, 18); // EM_X86_64
  eh.writeBigUInt64LE(64n, 32); // e_phoff
  eh.writeUInt16LE(64, 52);
  eh.writeUInt16LE(56, 54);
  eh.writeUInt16LE(phnum, 56);
  const ph = Buffer.alloc(56 * phnum);
  ph.writeUInt32LE(4, 0); // PT_NOTE, empty
  const bodies: Buffer[] = [];
  segments.forEach((s, i) => {
    const at = 56 * (i + 1);
    ph.writeUInt32LE(1, at); // PT_LOAD
    ph.writeBigUInt64LE(BigInt(offset), at + 8);
    ph.writeBigUInt64LE(s.vaddr, at + 16);
    ph.writeBigUInt64LE(BigInt(s.data.length), at + 32);
    ph.writeBigUInt64LE(BigInt(s.data.length), at + 40);
    bodies.push(Buffer.from(s.data));
    offset += s.data.length;
  });
  return Buffer.concat([eh, ph, ...bodies]);
}

// endbr64; call __fentry__; mov $1,%eax; ret; int3 x3 (16 bytes, then the next function's prefix)
const ORIG = [0xf3, 0x0f, 0x1e, 0xfa, 0xe8, 0, 0, 0, 0, 0xb8, 1, 0, 0, 0, 0xc3, 0xcc];
const TEXT = 0xffffffff81000000n;

function recorded(): RecordedFunction {
  const bytes = Uint8Array.from(ORIG.slice(0, 15));
  const linked = new Uint8Array(bytes.length).fill(1, 5, 9);
  const sites = new Map<number, Site>([
    [0, { kind: "endbr", evidence: "recorded" }],
    [4, { kind: "fentry", evidence: "recorded" }],
  ]);
  return {
    object: "vmlinux",
    name: "f",
    sympos: 0,
    code: { name: "f", file: "m.ko", bytes, linked, sites, weak: false },
  };
}

function procWith(text: number[]): string {
  const proc = mkdtempSync(join(tmpdir(), "kpatch-live-check-"));
  const page = new Uint8Array(0x100).fill(0xcc);
  page.set(text, 0x40);
  writeFileSync(join(proc, "kcore"), elfCore([{ vaddr: TEXT, data: page }]));
  writeFileSync(
    join(proc, "kallsyms"),
    ["ffffffff81000030 t __pfx_f", "ffffffff81000040 t f", "ffffffff81000050 t g", ""].join("\n"),
  );
  return proc;
}

test("Kcore: reads by kernel address through the PT_LOAD segments; outside them, nothing", () => {
  const proc = procWith(ORIG);
  try {
    const k = Kcore.open(join(proc, "kcore"));
    assert.deepEqual([...k.bytesAt(TEXT + 0x40n, 4)!], ORIG.slice(0, 4));
    assert.equal(k.bytesAt(TEXT + 0xfen, 4), undefined);
    assert.equal(k.bytesAt(TEXT - 1n, 2), undefined);
    k.close();
    writeFileSync(join(proc, "kcore"), "not a core");
    assert.throws(() => Kcore.open(join(proc, "kcore")), KcoreError);
    assert.throws(() => Kcore.open(join(proc, "missing")), /ENOENT/);
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});

test("compareLive(): the recorded original against kcore at the kallsyms address, sealed endbr and nop5 allowed", () => {
  const live = [0x66, 0x0f, 0x1f, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xb8, 1, 0, 0, 0, 0xc3, 0xcc];
  const proc = procWith(live);
  const notes: string[] = [];
  try {
    const r = compareLive([recorded()], parsed(readFileSync(join(proc, "kallsyms"), "utf8")), proc, (n) =>
      notes.push(n),
    );
    assert.deepEqual(notes, []);
    assert.equal(r?.functions.length, 1);
    assert.equal(r?.allowed, 1);
    assert.equal(r?.functions[0]?.address, "0xffffffff81000040");
    assert.deepEqual(
      r?.functions[0]?.allowed.map((a) => a.kind),
      ["endbr", "fentry"],
    );
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});

test("compareLive(): other code at the address is a mismatch naming the offset and both instructions", () => {
  const proc = procWith([0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xb8, 2, 0, 0, 0, 0xc3, 0xcc]);
  try {
    const r = compareLive([recorded()], parsed(readFileSync(join(proc, "kallsyms"), "utf8")), proc, () => {});
    assert.equal(r?.mismatched, 1);
    const m = r?.functions[0]?.mismatch;
    assert.equal(m?.offset, 9);
    assert.match(m!.ours, /mov \$1,%eax \(b801000000\)/);
    assert.match(m!.theirs, /mov \$2,%eax \(b802000000\)/);
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});

test("compareLive(): no kcore, or hidden kallsyms addresses: one line saying so, nothing compared", () => {
  const proc = procWith(ORIG);
  try {
    rmSync(join(proc, "kcore"));
    const notes: string[] = [];
    const kallsyms = readFileSync(join(proc, "kallsyms"), "utf8");
    assert.equal(
      compareLive([recorded()], parsed(kallsyms), proc, (n) => notes.push(n)),
      undefined,
    );
    assert.match(notes[0] ?? "", /cannot read .*kcore \(ENOENT\): code not compared, kallsyms check only/);
    const hidden = kallsyms.replace(/^[0-9a-f]+/gm, "0000000000000000");
    assert.equal(
      compareLive([recorded()], parsed(hidden), proc, (n) => notes.push(n)),
      undefined,
    );
    assert.match(notes[1] ?? "", /kallsyms addresses are hidden/);
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});

test("labelCalledHelpers(): a recorded helper the patch does not replace (another sympos too) is reported as called", () => {
  const result = (fn: string, sympos: number) => ({
    object: "vmlinux",
    target: "vmlinux",
    function: fn,
    sympos,
    role: "replaced" as const,
    status: "matched" as const,
    size: 16,
    allowed: [],
  });
  const report: RunPreReport = {
    sources: {},
    functions: [result("do_wp_page", 0), result("set_ptes.constprop.0", 1), result("m_start", 1)],
    matched: 3,
    allowed: 0,
    mismatched: 0,
    overridden: 0,
    ms: 0,
  };
  labelCalledHelpers(
    report,
    meta([
      [
        "vmlinux",
        [
          ["do_wp_page", 0],
          ["m_start", 2],
        ],
      ],
    ]),
  );
  assert.deepEqual(
    report.functions.map((f) => `${f.function},${f.sympos} ${f.role}`),
    ["do_wp_page,0 replaced", "set_ptes.constprop.0,1 called", "m_start,1 called"],
  );
});
