import assert from "node:assert/strict";
import { test } from "node:test";
import { compareElf } from "../../test/helpers/compare-elf.js";
import { assemble, readelf, run, saveBytes } from "../../test/helpers/elf-tools.js";
import {
  SHN_LORESERVE,
  SHN_XINDEX,
  SHT_PROGBITS,
  SHT_SYMTAB_SHNDX,
  STB_GLOBAL,
  STT_FUNC,
} from "./constants.js";
import { createElf } from "./elf-file.js";
import { EHDR } from "./layout.js";
import { readElf } from "./read-elf.js";
import { writeElf } from "./write-elf.js";

/** Just past SHN_LORESERVE, like vmlinux.o with -ffunction-sections (which has about 100,000). */
const COUNT = SHN_LORESERVE + 40;

test("readElf() and writeElf() handle extended section numbering from GNU as", async () => {
  const lines: string[] = [];
  for (let i = 0; i < COUNT; i++)
    lines.push(`.section .text.f${i},"ax"\n.globl f${i}\n.type f${i},@function\nf${i}: ret\n.size f${i},1`);
  lines.push('.section .text.caller,"ax"\ncaller: call f1\ncall f' + (COUNT - 1));
  const obj = assemble("xindex", lines.join("\n"));
  const elf = readElf(obj.bytes, obj.path);
  assert.ok(elf.sections.length > SHN_LORESERVE);
  const shndx = elf.sections.find((s) => s.type === SHT_SYMTAB_SHNDX);
  assert.equal(shndx?.link, elf.symtab);
  const last = elf.lookupSymbol(`f${COUNT - 1}`);
  assert.equal(last.section?.name, `.text.f${COUNT - 1}`);
  assert.ok(last.section!.index >= SHN_LORESERVE);
  assert.equal(elf.shstrtab?.name, ".shstrtab");

  const out = writeElf(elf);
  const view = new DataView(out.buffer, out.byteOffset);
  assert.equal(view.getUint16(EHDR.shnum, true), 0);
  assert.equal(view.getUint16(EHDR.shstrndx, true), SHN_XINDEX);
  const back = readElf(out);
  assert.deepEqual(compareElf(elf, back), []);
  const path = saveBytes("xindex.rewritten.o", out);
  assert.equal(await readelf(path), await readelf(obj.path));
  await run("ld", ["-r", "-o", saveBytes("xindex.linked.o", new Uint8Array(0)), path]);
});

test("writeElf() adds SHT_SYMTAB_SHNDX when a built object passes SHN_LORESERVE sections", () => {
  const elf = createElf();
  for (let i = 0; i < COUNT; i++) {
    const sec = elf.addSection({
      name: `.text.g${i}`,
      type: SHT_PROGBITS,
      flags: 0x6n,
      data: Uint8Array.of(0xc3),
    });
    if (i % 1000 === 0 || i === COUNT - 1)
      elf.addSymbol({ name: `g${i}`, type: STT_FUNC, bind: STB_GLOBAL, section: sec, size: 1n });
  }
  const back = readElf(writeElf(elf));
  assert.equal(back.sections.length, elf.sections.length + 1, "the writer appends .symtab_shndx");
  const added = back.sections.at(-1)!;
  assert.equal(added.type, SHT_SYMTAB_SHNDX);
  assert.equal(added.name, ".symtab_shndx");
  assert.equal(back.lookupSymbol(`g${COUNT - 1}`).section?.name, `.text.g${COUNT - 1}`);
  assert.equal(back.lookupSymbol("g0").section?.name, ".text.g0");
  assert.equal(back.shstrtab?.name, ".shstrtab");
});
