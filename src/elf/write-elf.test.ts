import assert from "node:assert/strict";
import { test } from "node:test";
import { compareElf } from "../../test/helpers/compare-elf.js";
import { assemble, compileC, linkExecutable, readelf, run, saveBytes } from "../../test/helpers/elf-tools.js";
import {
  R_X86_64_PC32,
  R_X86_64_PLT32,
  SHF_ALLOC,
  SHF_INFO_LINK,
  SHF_RELA_LIVEPATCH,
  SHN_LIVEPATCH,
  SHT_PROGBITS,
  SHT_RELA,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
  STT_OBJECT,
} from "./constants.js";
import { ElfError } from "./elf-error.js";
import { createElf } from "./elf-file.js";
import { ElfReloc } from "./elf-reloc.js";
import { readElf } from "./read-elf.js";
import { writeElf } from "./write-elf.js";

const C_SOURCE = `
static int counter;
static const char *names[] = {"zero", "one", "two"};
int table[8];
extern void external(const char *);
static __attribute__((noinline)) void helper(int i) { external(names[i % 3]); counter++; }
int api(int x) { for (int i = 0; i < x; i++) helper(i); return counter + table[x & 7]; }
void __attribute__((cold, noinline)) rarely(void) { external("cold"); }
`;

const ASM_SOURCE = `
  .section .text.grouped,"axG",@progbits,grouped_fn,comdat
  .globl grouped_fn
  .type grouped_fn,@function
grouped_fn:
  call other_fn
  ret
  .size grouped_fn,.-grouped_fn
  .section __patchable_function_entries,"awo",@progbits,.text.grouped
  .quad grouped_fn
  .section .eh_frame,"a",@unwind
  .quad grouped_fn
  .section .note.Linux,"a",@note
  .long 6, 4, 0x100
  .asciz "Linux"
  .balign 4
  .long 0x12345678
  .section .note.gnu.property,"a",@note
  .balign 8
  .long 4, 16, 5
  .asciz "GNU"
  .long 0xc0000002, 4, 3
  .balign 8
  .section .rodata.str1.1,"aMS",@progbits,1
  .asciz "hello"
  .section .data..page_aligned,"aw"
  .balign 4096
  .quad 1
`;

/** write → read gives the same model, the same readelf output and an object ld -r accepts. */
async function assertFaithful(name: string, path: string, bytes: Uint8Array): Promise<Uint8Array> {
  const before = readElf(bytes, path);
  const out = writeElf(before);
  const after = readElf(out, `${path} (rewritten)`);
  assert.deepEqual(compareElf(before, after), []);
  const rewritten = saveBytes(`${name}.rewritten.o`, out);
  assert.equal(await readelf(rewritten), await readelf(path));
  await run("ld", ["-r", "-o", saveBytes(`${name}.linked.o`, new Uint8Array(0)), rewritten]);
  return out;
}

test("writeElf() gives back a gcc object's model and readelf output, and ld -r accepts it", async () => {
  const obj = compileC("write-c", C_SOURCE);
  await assertFaithful("write-c", obj.path, obj.bytes);
});

test("writeElf() keeps groups, notes, unwind, link-order and page-aligned sections", async () => {
  const obj = assemble("write-asm", ASM_SOURCE);
  const out = await assertFaithful("write-asm", obj.path, obj.bytes);
  const elf = readElf(out);
  const page = elf.lookupSection(".data..page_aligned");
  assert.equal(page.addralign, 4096);
  const shoff = Number(new DataView(out.buffer, out.byteOffset).getBigUint64(40, true));
  assert.ok(shoff % 8 === 0);
});

test("writeElf() refuses an executable", () => {
  const obj = compileC("write-exec", "void _start(void) { for (;;) {} }");
  const exe = linkExecutable("write-exec", [obj.path]);
  assert.throws(
    () => writeElf(readElf(exe.bytes)),
    (e: unknown) => e instanceof ElfError && e.code === "ELF_BAD_TYPE",
  );
});

test("writeElf() moves a symbol made global after the locals and sets .symtab sh_info", () => {
  const obj = compileC("write-order", C_SOURCE);
  const elf = readElf(obj.bytes);
  const helper = elf.lookupSymbol("helper");
  assert.equal(helper.bind, STB_LOCAL);
  helper.bind = STB_GLOBAL;
  const after = readElf(writeElf(elf));
  const syms = after.symbols;
  const firstGlobal = syms.findIndex((s) => s.bind !== STB_LOCAL);
  assert.ok(syms.slice(firstGlobal).every((s) => s.bind !== STB_LOCAL));
  assert.equal(after.lookupSymbol("helper").bind, STB_GLOBAL);
  assert.ok(after.lookupSymbol("helper").index >= firstGlobal);
  // Relocations still name the same symbols.
  const calls = after.lookupSection(".text.api").rela!.relocs.map((r) => r.symbol.displayName);
  const callsBefore = elf.lookupSection(".text.api").rela!.relocs.map((r) => r.symbol.displayName);
  assert.deepEqual(calls, callsBefore);
});

test("writeElf() remaps section indexes after sections are removed", async () => {
  const obj = compileC("write-remove", C_SOURCE);
  const elf = readElf(obj.bytes);
  const before = elf.sections.length;
  const cold = elf.findSection(".text.unlikely.rarely") ?? elf.lookupSection(".text.rarely");
  // Nothing else refers to rarely(): cascade takes its symbol and its rela section with it.
  elf.removeSection(cold, { cascade: true });
  assert.equal(elf.sections.length, before - 2);
  assert.equal(elf.findSymbol("rarely"), undefined);
  const out = writeElf(elf);
  const after = readElf(out);
  assert.deepEqual(compareElf(elf, after), []);
  for (const sym of after.symbols) if (sym.section) assert.equal(sym.section.file, after);
  const path = saveBytes("write-remove.rewritten.o", out);
  await run("ld", ["-r", "-o", saveBytes("write-remove.linked.o", new Uint8Array(0)), path]);
});

test("writeElf() builds an object from scratch that ld links", async () => {
  const elf = createElf();
  // _start: call helper; jmp .   helper: ret
  const text = elf.addSection({
    name: ".text",
    type: SHT_PROGBITS,
    flags: 0x6n,
    addralign: 16,
    data: Uint8Array.of(0xe8, 0, 0, 0, 0, 0xeb, 0xfe, 0xc3),
  });
  const data = elf.addSection({
    name: ".data",
    type: SHT_PROGBITS,
    flags: 0x3n,
    addralign: 8,
    data: new Uint8Array(8),
  });
  const start = elf.addSymbol({ name: "_start", type: STT_FUNC, bind: STB_GLOBAL, section: text, size: 7n });
  const helper = elf.addSymbol({ name: "helper", type: STT_FUNC, section: text, value: 7n, size: 1n });
  elf.addSymbol({ name: "slot", type: STT_OBJECT, section: data, size: 8n });
  elf.addReloc(text, { offset: 1, type: R_X86_64_PLT32, symbol: helper, addend: -4n });
  assert.ok(helper.index < start.index, "locals stay before globals");
  const out = writeElf(elf);
  const back = readElf(out);
  assert.deepEqual(compareElf(elf, back), []);
  const rela = back.lookupSection(".rela.text");
  assert.equal(rela.relocs[0]!.symbol.name, "helper");
  const path = saveBytes("scratch.o", out);
  const exe = linkExecutable("scratch", [path]);
  const linked = readElf(exe.bytes);
  const linkedText = linked.lookupSection(".text");
  const call = new DataView(linkedText.data.buffer, linkedText.data.byteOffset).getInt32(1, true);
  assert.equal(call, 2, "the call lands on helper, 7 bytes into .text");
});

test("writeElf() refuses a relocation against a removed symbol", () => {
  const obj = compileC("write-unowned", C_SOURCE);
  const elf = readElf(obj.bytes);
  const api = elf.lookupSymbol("api");
  const other = readElf(obj.bytes).lookupSymbol("api");
  elf
    .lookupSection(".text.api")
    .rela!.relocs.push({ ...elf.lookupSection(".text.api").rela!.relocs[0]!, symbol: other });
  assert.ok(api.file === elf);
  assert.throws(
    () => writeElf(elf),
    (e: unknown) => e instanceof ElfError && e.code === "ELF_NOT_OWNED",
  );
});

test("writeElf() writes livepatch relocation sections and SHN_LIVEPATCH symbols", async () => {
  const elf = createElf();
  const text = elf.addSection({
    name: ".text",
    type: SHT_PROGBITS,
    flags: 0x6n,
    addralign: 16,
    data: new Uint8Array(8),
  });
  elf.addSymbol({ name: "fixed_fn", type: STT_FUNC, bind: STB_GLOBAL, section: text, size: 8n });
  // module-elf-format.rst: .klp.sym.<objname>.<symbol>,<sympos> with st_shndx SHN_LIVEPATCH
  const klpSym = elf.addSymbol({
    name: ".klp.sym.vmlinux.saved_command_line,0",
    bind: STB_GLOBAL,
    shndx: SHN_LIVEPATCH,
  });
  const klpRela = elf.addSection({
    name: ".klp.rela.vmlinux..text",
    type: SHT_RELA,
    flags: SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH,
    addralign: 8,
    entsize: 24,
    link: elf.symtab,
    base: text,
  });
  assert.equal(text.rela, undefined, "a .klp.rela section is not the section's rela");
  klpRela.relocs.push(new ElfReloc(3, R_X86_64_PC32, klpSym, -4n));
  const out = writeElf(elf);
  const back = readElf(out);
  assert.deepEqual(compareElf(elf, back), []);
  const sym = back.lookupSymbol(".klp.sym.vmlinux.saved_command_line,0");
  assert.equal(sym.shndx, SHN_LIVEPATCH);
  assert.equal(sym.section, undefined);
  const rela = back.lookupSection(".klp.rela.vmlinux..text");
  assert.equal(rela.flags & SHF_RELA_LIVEPATCH, SHF_RELA_LIVEPATCH);
  assert.equal(rela.base, back.lookupSection(".text"));
  assert.equal(rela.relocs[0]!.symbol, sym);
  const path = saveBytes("klp.o", out);
  const text2 = await run("readelf", ["-s", "-r", "-W", path]);
  assert.match(text2, /\.klp\.rela\.vmlinux\.\.text' at offset 0x[0-9a-f]+ contains 1 entry/);
  assert.match(text2, /LIVEPATCH|0xff20|OS\[0xff20\]/);
});
