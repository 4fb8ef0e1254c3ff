import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble, compileC, linkExecutable, linkShared } from "../../test/helpers/elf-tools.js";
import {
  ET_DYN,
  ET_EXEC,
  ET_REL,
  GRP_COMDAT,
  NT_GNU_PROPERTY_TYPE_0,
  R_X86_64_PC32,
  R_X86_64_PLT32,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_GROUP,
  SHF_INFO_LINK,
  SHF_LINK_ORDER,
  SHN_ABS,
  SHN_COMMON,
  SHN_UNDEF,
  SHT_GROUP,
  SHT_NOBITS,
  SHT_NOTE,
  SHT_RELA,
  SHT_X86_64_UNWIND,
  STB_GLOBAL,
  STB_LOCAL,
  STB_WEAK,
  STT_FILE,
  STT_FUNC,
  STT_OBJECT,
  STT_SECTION,
  STV_HIDDEN,
} from "./constants.js";
import { readElf } from "./read-elf.js";

const SOURCE = `
static int counter;
int shared_table[4] = {1, 2, 3, 4};
__attribute__((visibility("hidden"))) int hidden_value = 7;
__attribute__((weak)) int weak_hook(void) { return 0; }
extern int external_fn(int);
static __attribute__((noinline)) int bump(int by) { counter += by; return counter; }
int entry(int x) { return bump(x) + external_fn(shared_table[x & 3]) + weak_hook(); }
`;

test("readElf() reads the header, sections and symbols of a gcc object", () => {
  const { path, bytes } = compileC("read-basic", SOURCE);
  const elf = readElf(bytes, path);
  assert.equal(elf.type, ET_REL);
  assert.equal(elf.path, path);
  assert.equal(elf.sections[0]!.index, 0);
  assert.equal(elf.sections[0]!.name, "");
  assert.equal(elf.symbols[0]!.name, "");
  assert.equal(elf.symbols[0]!.index, 0);

  const text = elf.lookupSection(".text.entry");
  assert.equal(text.flags & (SHF_ALLOC | SHF_EXECINSTR), SHF_ALLOC | SHF_EXECINSTR);
  assert.equal(text.addralign, 16);
  assert.ok(text.data.length > 0);
  assert.equal(text.size, text.data.length);

  const bss = elf.lookupSection(".bss.counter");
  assert.equal(bss.type, SHT_NOBITS);
  assert.equal(bss.size, 4);
  assert.equal(bss.data.length, 0);

  const entry = elf.lookupSymbol("entry");
  assert.equal(entry.type, STT_FUNC);
  assert.equal(entry.bind, STB_GLOBAL);
  assert.equal(entry.section, text);
  assert.equal(entry.size, BigInt(text.size));
  assert.equal(elf.lookupSymbol("weak_hook").bind, STB_WEAK);
  assert.equal(elf.lookupSymbol("hidden_value").visibility, STV_HIDDEN);
  assert.equal(elf.lookupSymbol("shared_table").type, STT_OBJECT);
  assert.equal(elf.lookupSymbol("shared_table").size, 16n);
  const counter = elf.lookupSymbol("counter");
  assert.equal(counter.bind, STB_LOCAL);
  assert.equal(counter.section, bss);
  const ext = elf.lookupSymbol("external_fn");
  assert.equal(ext.section, undefined);
  assert.equal(ext.shndx, SHN_UNDEF);
  assert.ok(ext.isUndefined);
  assert.equal(elf.symbols.find((s) => s.type === STT_FILE)?.name, "read-basic.c");
  assert.equal(elf.strtab?.name, ".strtab");
  assert.equal(elf.shstrtab?.name, ".shstrtab");
  assert.equal(elf.symtab?.name, ".symtab");
});

test("readElf() resolves relocations to their base section and symbol objects", () => {
  const { bytes } = compileC("read-relocs", SOURCE);
  const elf = readElf(bytes);
  const text = elf.lookupSection(".text.entry");
  const rela = text.rela;
  assert.ok(rela);
  assert.equal(rela.type, SHT_RELA);
  assert.equal(rela.name, ".rela.text.entry");
  assert.equal(rela.base, text);
  assert.equal(rela.link, elf.symtab);
  assert.equal(rela.flags & SHF_INFO_LINK, SHF_INFO_LINK);
  assert.equal(rela.data.length, 0);
  assert.equal(rela.size, rela.relocs.length * 24);
  const call = rela.relocs.find((r) => r.symbol.name === "external_fn");
  assert.ok(call);
  assert.equal(call.type, R_X86_64_PLT32);
  assert.equal(call.addend, -4n);
  assert.ok(call.offset > 0 && call.offset < text.size);
  const table = rela.relocs.find((r) => r.symbol.name === "shared_table");
  assert.ok(table);
  assert.ok(table.type === R_X86_64_PC32 || table.type === 11 /* R_X86_64_32S */);
  for (const r of rela.relocs) assert.equal(elf.symbols[r.symbol.index], r.symbol);
});

test("readElf() links each section to its STT_SECTION symbol", () => {
  const { bytes } = compileC("read-secsym", SOURCE);
  const elf = readElf(bytes);
  for (const sym of elf.symbols) {
    if (sym.type !== STT_SECTION) continue;
    assert.ok(sym.section);
    assert.equal(sym.section.sectionSymbol, sym);
    assert.equal(sym.displayName, sym.section.name);
  }
});

const ASM = `
  .section .text.grouped,"axG",@progbits,grouped_fn,comdat
  .globl grouped_fn
  .type grouped_fn,@function
grouped_fn:
  call other_fn
  ret
  .size grouped_fn,.-grouped_fn
  .section .data.grouped,"awG",@progbits,grouped_fn,comdat
  .quad grouped_fn
  .section __patchable_function_entries,"awo",@progbits,.text.grouped
  .quad grouped_fn
  .section .eh_frame,"a",@unwind
  .long 0
  .section .note.Linux,"a",@note
  .balign 4
  .long 6
  .long 4
  .long 0x100
  .asciz "Linux"
  .balign 4
  .long 0x12345678
  .section .note.gnu.property,"a",@note
  .balign 8
  .long 4
  .long 16
  .long 5
  .asciz "GNU"
  .long 0xc0000002
  .long 4
  .long 3
  .balign 8
  .globl abs_sym
  .set abs_sym, 0x1234
  .comm common_sym,8,8
`;

test("readElf() reads COMDAT groups with their members and signature", () => {
  const { bytes } = assemble("read-group", ASM);
  const elf = readElf(bytes);
  const group = elf.sections.find((s) => s.type === SHT_GROUP);
  assert.ok(group);
  assert.equal(group.groupFlags, GRP_COMDAT);
  assert.equal(group.signature, elf.lookupSymbol("grouped_fn"));
  const names = group.members.map((s) => s.name);
  assert.deepEqual(names, [".text.grouped", ".rela.text.grouped", ".data.grouped", ".rela.data.grouped"]);
  for (const m of group.members) {
    assert.equal(m.group, group);
    assert.equal(m.flags & SHF_GROUP, SHF_GROUP);
  }
  assert.equal(group.size, 4 * (1 + group.members.length));
});

test("readElf() resolves sh_link of SHF_LINK_ORDER sections to the section object", () => {
  const { bytes } = assemble("read-link-order", ASM);
  const elf = readElf(bytes);
  const pfe = elf.lookupSection("__patchable_function_entries");
  assert.equal(pfe.flags & SHF_LINK_ORDER, SHF_LINK_ORDER);
  assert.equal(pfe.link, elf.lookupSection(".text.grouped"));
});

test("readElf() parses notes into name, type and descriptor", () => {
  const { bytes } = assemble("read-notes", ASM);
  const elf = readElf(bytes);
  const linux = elf.lookupSection(".note.Linux");
  assert.equal(linux.type, SHT_NOTE);
  assert.deepEqual(
    linux.notes.map((n) => [n.name, n.type, [...n.desc]]),
    [["Linux", 0x100, [0x78, 0x56, 0x34, 0x12]]],
  );
  const prop = elf.lookupSection(".note.gnu.property");
  assert.equal(prop.addralign, 8);
  assert.equal(prop.notes.length, 1);
  assert.equal(prop.notes[0]!.name, "GNU");
  assert.equal(prop.notes[0]!.type, NT_GNU_PROPERTY_TYPE_0);
  assert.equal(prop.notes[0]!.desc.length, 16);
  assert.equal(prop.size, 32);
});

test("readElf() keeps SHT_X86_64_UNWIND contents byte for byte", () => {
  const { bytes } = assemble("read-unwind", ASM);
  const elf = readElf(bytes);
  const eh = elf.lookupSection(".eh_frame");
  assert.equal(eh.type, SHT_X86_64_UNWIND);
  assert.deepEqual([...eh.data], [0, 0, 0, 0]);
});

test("readElf() keeps ABS and COMMON symbols as reserved section indexes", () => {
  const { bytes } = assemble("read-special", ASM);
  const elf = readElf(bytes);
  const abs = elf.lookupSymbol("abs_sym");
  assert.equal(abs.section, undefined);
  assert.equal(abs.shndx, SHN_ABS);
  assert.equal(abs.value, 0x1234n);
  assert.ok(!abs.isUndefined);
  const common = elf.lookupSymbol("common_sym");
  assert.equal(common.shndx, SHN_COMMON);
  assert.equal(common.value, 8n); // alignment, for COMMON
});

test("readElf() reads an executable's sections and symbols", () => {
  const obj = compileC("read-exec", "void _start(void) { for (;;) {} }");
  const exe = linkExecutable("read-exec", [obj.path]);
  const elf = readElf(exe.bytes, exe.path);
  assert.equal(elf.type, ET_EXEC);
  const start = elf.lookupSymbol("_start");
  const text = start.section;
  assert.ok(text);
  assert.ok(start.value >= text.addr);
  assert.equal(elf.symbolAt(text, Number(start.value - text.addr)), start);
});

test("readElf() reads a shared object's sections and symbols, keeping its relocations as bytes", () => {
  const obj = compileC("read-dyn", "int counter; int get(void) { return counter; }", ["-fPIC"]);
  const so = linkShared("read-dyn.so", [obj.path]);
  const elf = readElf(so.bytes, so.path);
  assert.equal(elf.type, ET_DYN);
  assert.equal(elf.lookupSymbol("get").type, STT_FUNC);
  const dyn = elf.findSection(".rela.dyn");
  assert.ok(dyn);
  assert.equal(dyn.relocs.length, 0);
  assert.equal(dyn.size, dyn.data.length);
  assert.ok(dyn.data.length > 0);
});
