/**
 * Our x86 length decoder (src/x86/length-decoder.ts, behind x86Decoder()) against iced-x86 on real
 * kernel code: every function of the Debian kernel modules and lab-kernel objects in the cache
 * (kvm_intel.ko: VMX, FPU and AVX asm; the scheduler...), and of an object compiled here with the
 * kernel's flags (always there). Where ours decodes, lengths, immediate and displacement fields,
 * and the mnemonics and kinds it names itself must be iced-x86's; where it is not sure, it must
 * be rare (iced-x86 decodes those). KPATCH_X86_OBJECTS=a.o:b.ko adds objects.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type ElfFile, readElf, SHF_EXECINSTR } from "../src/elf/index.js";
import { cachePath } from "../src/util/cache-dir.js";
import { icedDecoder, x86Decoder } from "../src/x86/decoder.js";
import { decodeLength } from "../src/x86/length-decoder.js";
import { KERNEL_CFLAGS } from "./fixtures/diff/harness.js";
import { compileC } from "./helpers/elf-tools.js";

/** Real kernel objects in the cache: Debian's image modules, a few big lab objects. */
function cachedObjects(): string[] {
  const found: string[] = [];
  const distro = cachePath("distro");
  if (existsSync(distro)) {
    for (const d of readdirSync(distro)) {
      const mods = join(distro, d, "build", "image-modules");
      if (!existsSync(mods)) continue;
      for (const f of readdirSync(mods))
        if (f.endsWith(".ko") && statSync(join(mods, f)).size < 8 << 20) found.push(join(mods, f));
    }
  }
  const lab = cachePath("lab");
  if (existsSync(lab)) {
    for (const d of readdirSync(lab)) {
      for (const o of [
        "kernel/sched/core.o",
        "mm/page_alloc.o",
        "arch/x86/kvm/x86.o",
        "lib/crypto/sha256.o",
      ]) {
        const p = join(lab, d, "build", o);
        if (existsSync(p)) found.push(p);
      }
    }
  }
  return [...new Set(found)];
}

const SOURCE = `
struct s { long a[8]; int b; };
extern void consume(long);
long work(struct s *p, long n) {
  long t = 0;
  for (long i = 0; i < n && i < 8; i++) t += p->a[i] * (i + 3);
  if (p->b > 1000) consume(t >> 3);
  asm volatile("lfence; pause; xchg %%ax,%%ax; nopw 0(%%rax,%%rax,1); ud2; rdtsc; cpuid; xgetbv" ::: "memory", "rax", "rbx", "rcx", "rdx");
  return t ^ (long)p;
}
int sw(int x) { switch (x) { case 1: return 7; case 2: return 9; case 5: return 11; default: return x * 1000003; } }
`;

interface Tally {
  instructions: number;
  unsure: number;
  mismatches: string[];
}

// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: one loop comparing every field of both decoders
function crossCheck(file: ElfFile, tally: Tally): void {
  const iced = icedDecoder();
  for (const sym of file.symbols) {
    const sec = sym.section;
    if (!sym.isFunction || !sec || (sec.flags & SHF_EXECINSTR) === 0n || sym.size === 0n) continue;
    const start = Number(sym.value);
    const end = Math.min(sec.data.length, start + Number(sym.size));
    for (const want of iced.decodeRange(sec.data, start, end)) {
      if (want.invalid) break; // data in the middle of code (a jump table): out of step from here
      tally.instructions++;
      const got = decodeLength(sec.data, want.offset, end);
      if (!got) {
        tally.unsure++;
        continue;
      }
      const where = `${file.path}: ${sym.name}+0x${(want.offset - start).toString(16)} ${want.text}`;
      const field = (f?: { offset: number; size: number }) => (f ? `${f.offset}/${f.size}` : "-");
      if (got.length !== want.length)
        tally.mismatches.push(`${where}: length ${got.length}, iced ${want.length}`);
      else if (field(got.immediate) !== field(want.immediate) && want.mnemonic !== "enter")
        tally.mismatches.push(`${where}: immediate ${field(got.immediate)}, iced ${field(want.immediate)}`);
      else if (field(got.displacement) !== field(want.displacement))
        tally.mismatches.push(
          `${where}: displacement ${field(got.displacement)}, iced ${field(want.displacement)}`,
        );
      else {
        const fast = x86Decoder().decode(sec.data, want.offset, end);
        if (fast.mnemonic !== want.mnemonic || fast.kind !== want.kind)
          tally.mismatches.push(
            `${where}: ${fast.mnemonic}/${fast.kind}, iced ${want.mnemonic}/${want.kind}`,
          );
        else if (fast.mnemonic === "mov" && want.immediate && fast.destRegister !== want.destRegister)
          tally.mismatches.push(`${where}: destination ${fast.destRegister}, iced ${want.destRegister}`);
      }
    }
  }
}

test("our length decoder agrees with iced-x86 on every instruction of real kernel code it decodes", (t) => {
  const extra = (process.env["KPATCH_X86_OBJECTS"] ?? "").split(":").filter(Boolean);
  const compiled = compileC(
    "x86-crosscheck",
    SOURCE,
    KERNEL_CFLAGS.filter((f) => f !== "-g"),
  );
  const paths = [...cachedObjects(), ...extra];
  if (paths.length === 0)
    t.diagnostic("no kernel objects in the cache: only the object compiled here is checked");
  const tally: Tally = { instructions: 0, unsure: 0, mismatches: [] };
  crossCheck(readElf(compiled.bytes, compiled.path), tally);
  for (const p of paths) crossCheck(readElf(readFileSync(p), p), tally);
  t.diagnostic(
    `${paths.length + 1} objects, ${tally.instructions} instructions: ${tally.unsure} left to iced-x86 (${((100 * tally.unsure) / tally.instructions).toFixed(3)}%), ${tally.mismatches.length} mismatches`,
  );
  assert.deepEqual(tally.mismatches.slice(0, 10), []);
  assert.ok(tally.instructions > 50, "too few instructions decoded to tell");
  assert.ok(
    tally.unsure / tally.instructions < 0.01,
    `${tally.unsure} of ${tally.instructions} left to iced-x86`,
  );
});
