import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { assemble, compileC, run, saveBytes } from "../../test/helpers/elf-tools.js";
import { R_X86_64_64, SHF_GROUP, SHT_PROGBITS, STB_GLOBAL, STT_FUNC, STT_OBJECT } from "./constants.js";
import { ElfError } from "./elf-error.js";
import { createElf } from "./elf-file.js";
import { readElf } from "./read-elf.js";

const SOURCE = `
int data_a = 1, data_b = 2;
static __attribute__((noinline)) int one(int x) { return x + data_a; }
static __attribute__((noinline)) int two(int x) { return one(x) * data_b; }
int api(int x) { return two(x) + one(x); }
`;

function code(e: unknown): string | undefined {
  return e instanceof ElfError ? e.code : undefined;
}

test("findSection() and findSymbol() return undefined on a miss; lookup*() throws ELF_NOT_FOUND", () => {
  const elf = readElf(compileC("file-find", SOURCE).bytes);
  assert.equal(elf.findSection(".text.api")?.name, ".text.api");
  assert.equal(elf.findSection(".text.nothing"), undefined);
  assert.equal(elf.findSymbol("nothing"), undefined);
  assert.throws(
    () => elf.lookupSection(".text.nothing"),
    (e) => code(e) === "ELF_NOT_FOUND",
  );
  assert.throws(
    () => elf.lookupSymbol("nothing"),
    (e) => code(e) === "ELF_NOT_FOUND",
  );
  assert.equal(elf.section(elf.lookupSection(".text.api").index).name, ".text.api");
  assert.throws(
    () => elf.section(elf.sections.length),
    (e) => code(e) === "ELF_BAD_SECTION_INDEX",
  );
  assert.throws(
    () => elf.symbol(-1),
    (e) => code(e) === "ELF_BAD_SYMBOL_INDEX",
  );
  assert.equal(elf.findSection(""), undefined, "the null section has no name to find");
});

test("findSymbols() returns every local of the same name in table order", async () => {
  const parts = [1, 2, 3].map(
    (i) =>
      compileC(
        `file-dup${i}`,
        `static int dup(int x) { return x + ${i}; } int g${i}(int x) { return dup(x); }`,
        ["-O0"],
      ).path,
  );
  const linked = saveBytes("file-dups.o", new Uint8Array(0));
  await run("ld", ["-r", "-o", linked, ...parts]);
  const elf = readElf(new Uint8Array(readFileSync(linked)));
  const dups = elf.findSymbols("dup");
  assert.equal(dups.length, 3);
  // ld -r merges the three .text.dup sections into one; the functions sit one after another.
  assert.equal(new Set(dups.map((s) => s.value)).size, 3);
  assert.equal(elf.findSymbol("dup"), dups[0]);
  assert.ok(dups[0]!.index < dups[1]!.index && dups[1]!.index < dups[2]!.index);
});

test("symbolAt() finds the function containing an offset by binary search", () => {
  const asm = `
  .section .text.many,"ax"
  ${Array.from({ length: 200 }, (_, i) => `.type f${i},@function\nf${i}:\n.skip ${1 + (i % 7)}\n.size f${i},.-f${i}`).join("\n")}
  .type after,@object
  after: .skip 4
  `;
  const elf = readElf(assemble("file-at", asm).bytes);
  const text = elf.lookupSection(".text.many");
  for (let i = 0; i < 200; i++) {
    const f = elf.lookupSymbol(`f${i}`);
    const start = Number(f.value);
    const end = start + Number(f.size);
    assert.equal(elf.symbolAt(text, start), f);
    assert.equal(elf.symbolAt(text, end - 1), f);
  }
  assert.equal(elf.symbolAt(text, text.size), undefined, "past the end");
  assert.equal(elf.symbolAt(text, text.size - 2), undefined, "'after' has no size");
});

test("symbolAt() answers the innermost symbol when symbols nest", () => {
  const asm = `
  .section .data.blob,"aw"
  .type outer,@object
  outer:
  .skip 4
  .type inner,@object
  inner:
  .skip 4
  .size inner,4
  .skip 8
  .size outer,16
  `;
  const elf = readElf(assemble("file-nest", asm).bytes);
  const blob = elf.lookupSection(".data.blob");
  assert.equal(elf.symbolAt(blob, 0)?.name, "outer");
  assert.equal(elf.symbolAt(blob, 5)?.name, "inner");
  assert.equal(elf.symbolAt(blob, 8)?.name, "outer");
  assert.equal(elf.symbolAt(blob, 15)?.name, "outer");
  assert.equal(elf.symbolAt(blob, 16), undefined);
});

test("lookups stay right after renames, additions and value changes", () => {
  const elf = readElf(compileC("file-maps", SOURCE).bytes);
  const text = elf.lookupSection(".text.api");
  const api = elf.lookupSymbol("api");
  assert.equal(elf.symbolAt(text, 0), api);
  api.name = "api_v2";
  text.name = ".text.api_v2";
  assert.equal(elf.findSymbol("api"), undefined);
  assert.equal(elf.findSymbol("api_v2"), api);
  assert.equal(elf.findSection(".text.api"), undefined);
  assert.equal(elf.findSection(".text.api_v2"), text);

  const added = elf.addSymbol({
    name: "api_alias",
    type: STT_FUNC,
    bind: STB_GLOBAL,
    section: text,
    size: 1n,
  });
  assert.equal(elf.findSymbol("api_alias"), added);
  assert.ok(elf.symbolsIn(text).includes(added));
  api.value = 1n;
  api.size -= 1n;
  assert.equal(elf.symbolAt(text, 0), added);
  assert.equal(elf.symbolAt(text, 1), api);

  const local = elf.addSymbol({ name: "local_late", type: STT_OBJECT, section: text });
  assert.ok(local.index < api.index, "a new local goes before the globals");
  assert.equal(elf.symbols[local.index], local);
  assert.equal(elf.symbols[api.index], api);
});

test("removeSection() refuses a section symbols still refer to; cascade removes them", () => {
  const elf = readElf(compileC("file-remove", SOURCE).bytes);
  const data = elf.lookupSection(".data.data_a");
  assert.throws(
    () => elf.removeSection(data),
    (e) => code(e) === "ELF_SECTION_IN_USE" && /symbol data_a is defined in it/.test((e as Error).message),
  );
  const users = elf.relocsTo(elf.lookupSymbol("data_a")).length;
  assert.ok(users > 0);
  const relocsBefore = elf.sections.reduce((n, s) => n + s.relocs.length, 0);
  elf.removeSection(data, { cascade: true });
  assert.equal(data.file, undefined);
  assert.equal(data.index, -1);
  assert.equal(elf.findSymbol("data_a"), undefined);
  assert.equal(
    elf.sections.reduce((n, s) => n + s.relocs.length, 0),
    relocsBefore - users,
  );
  elf.sections.forEach((s, i) => {
    assert.equal(s.index, i);
  });
  elf.symbols.forEach((s, i) => {
    assert.equal(s.index, i);
  });
});

test("removeSection() refuses a section a rela section applies to", () => {
  const elf = readElf(compileC("file-remove-rela", SOURCE).bytes);
  const text = elf.lookupSection(".text.api");
  for (const sym of [...elf.symbolsIn(text)]) elf.removeSymbol(sym);
  assert.throws(
    () => elf.removeSection(text),
    (e) => code(e) === "ELF_SECTION_IN_USE" && /\.rela\.text\.api applies to it/.test((e as Error).message),
  );
  elf.removeSections([text, text.rela!]);
  assert.equal(elf.findSection(".rela.text.api"), undefined);
});

test("removeSymbol() refuses a symbol relocations use; cascade removes the relocations", () => {
  const elf = readElf(compileC("file-remove-sym", SOURCE).bytes);
  const one = elf.lookupSymbol("data_b");
  assert.throws(
    () => elf.removeSymbol(one),
    (e) =>
      code(e) === "ELF_SYMBOL_IN_USE" &&
      /a relocation at \.text\.\w+\+0x[0-9a-f]+ refers to it/.test((e as Error).message),
  );
  elf.removeSymbol(one, { cascade: true });
  assert.equal(elf.relocsTo(one).length, 0);
  assert.equal(elf.findSymbol("data_b"), undefined);
  assert.throws(
    () => elf.removeSymbol(one),
    (e) => code(e) === "ELF_NOT_OWNED",
  );
});

test("removeSection() with cascade removes an emptied group; a group signature cannot be removed alone", () => {
  const asm = `
  .section .text.g,"axG",@progbits,sig,comdat
  .globl sig
  sig: ret
  .section .text.other,"ax"
  call sig
  `;
  const elf = readElf(assemble("file-group", asm).bytes);
  const g = elf.lookupSection(".text.g");
  const group = g.group!;
  assert.throws(
    () => elf.removeSymbol(elf.lookupSymbol("sig"), { cascade: true }),
    (e) => code(e) === "ELF_SYMBOL_IN_USE",
  );
  elf.removeSection(g, { cascade: true });
  assert.equal(group.file, undefined);
  assert.equal(elf.findSymbol("sig"), undefined);
  assert.equal(elf.lookupSection(".rela.text.other").relocs.length, 0);
});

test("addReloc() creates the rela section, in the base section's group", () => {
  const asm = `.section .text.g,"axG",@progbits,sig,comdat\n.globl sig\nsig: .quad 0\n`;
  const elf = readElf(assemble("file-addreloc", asm).bytes);
  const g = elf.lookupSection(".text.g");
  const reloc = elf.addReloc(g, { offset: 0, type: R_X86_64_64, symbol: elf.lookupSymbol("sig") });
  const rela = g.rela!;
  assert.equal(rela.name, ".rela.text.g");
  assert.equal(rela.base, g);
  assert.equal(rela.link, elf.symtab);
  assert.deepEqual(rela.relocs, [reloc]);
  assert.equal(rela.group, g.group);
  assert.ok(g.group!.members.includes(rela));
  assert.equal(rela.flags & SHF_GROUP, SHF_GROUP);
});

test("changes refuse sections and symbols of another file", () => {
  const a = createElf();
  const b = createElf();
  const sec = b.addSection({ name: ".text", type: SHT_PROGBITS });
  assert.throws(
    () => a.addSymbol({ name: "x", section: sec }),
    (e) => code(e) === "ELF_NOT_OWNED",
  );
  assert.throws(
    () => a.removeSection(sec),
    (e) => code(e) === "ELF_NOT_OWNED",
  );
  assert.throws(
    () => a.removeSection(a.sections[0]!),
    (e) => code(e) === "ELF_SECTION_IN_USE",
  );
  assert.throws(
    () => a.removeSection(a.symtab!),
    (e) => code(e) === "ELF_SECTION_IN_USE",
  );
});
