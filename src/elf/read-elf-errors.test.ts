import assert from "node:assert/strict";
import { test } from "node:test";
import { compileC } from "../../test/helpers/elf-tools.js";
import { ELFDATA2MSB, ET_CORE, SHT_SYMTAB } from "./constants.js";
import { ElfError } from "./elf-error.js";
import { EHDR, EI, RELA, SHDR, SYM } from "./layout.js";
import { readElf } from "./read-elf.js";

const SOURCE = `
int value;
extern int ext(int);
int f(int x) { return ext(x) + value; }
`;

const good = compileC("errors", SOURCE);
const model = readElf(good.bytes);

/** A copy of the good object with `edit` applied through a little-endian DataView. */
function mutate(edit: (v: DataView, bytes: Uint8Array) => void): Uint8Array {
  const bytes = good.bytes.slice();
  edit(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes);
  return bytes;
}

const shoff = Number(new DataView(good.bytes.buffer, good.bytes.byteOffset).getBigUint64(EHDR.shoff, true));
/** File offset of the section header of the section named `name`. */
function shdrOf(name: string): number {
  return shoff + model.lookupSection(name).index * SHDR.SIZE;
}
function fileOffsetOf(name: string): number {
  return Number(
    new DataView(good.bytes.buffer, good.bytes.byteOffset).getBigUint64(shdrOf(name) + SHDR.offset, true),
  );
}

function rejects(bytes: Uint8Array, code: string, check?: (e: ElfError) => void): void {
  assert.throws(
    () => readElf(bytes, "bad.o"),
    (e: unknown) => {
      assert.ok(e instanceof ElfError, `expected ElfError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      assert.equal(e.location.file, "bad.o");
      check?.(e);
      return true;
    },
  );
}

test("readElf() rejects an empty file as truncated", () => {
  rejects(new Uint8Array(0), "ELF_TRUNCATED");
});

test("readElf() rejects a file that is not ELF", () => {
  rejects(new TextEncoder().encode("#!/bin/sh\necho hello\n"), "ELF_BAD_MAGIC");
});

test("readElf() rejects a 32-bit object", () => {
  const obj = compileC("errors32", SOURCE, ["-m32"]);
  rejects(obj.bytes, "ELF_BAD_CLASS", (e) => assert.match(e.message, /32-bit/));
});

test("readElf() rejects a big-endian object", () => {
  rejects(
    mutate((_, b) => {
      b[EI.DATA] = ELFDATA2MSB;
    }),
    "ELF_BAD_ENDIAN",
    (e) => assert.match(e.message, /big-endian/),
  );
});

test("readElf() rejects another machine type", () => {
  rejects(
    mutate((v) => v.setUint16(EHDR.machine, 183 /* EM_AARCH64 */, true)),
    "ELF_BAD_MACHINE",
  );
});

test("readElf() rejects a core file", () => {
  rejects(
    mutate((v) => v.setUint16(EHDR.type, ET_CORE, true)),
    "ELF_BAD_TYPE",
  );
});

test("readElf() rejects a file cut inside the ELF header", () => {
  rejects(good.bytes.subarray(0, 40), "ELF_TRUNCATED");
});

test("readElf() rejects a file cut inside the section header table", () => {
  rejects(good.bytes.subarray(0, good.bytes.length - 10), "ELF_TRUNCATED");
});

test("readElf() rejects section contents past the end of the file", () => {
  const at = shdrOf(".text.f");
  rejects(
    mutate((v) => v.setBigUint64(at + SHDR.offset, BigInt(good.bytes.length - 2), true)),
    "ELF_SECTION_OUT_OF_FILE",
    (e) => assert.equal(e.location.section, `#${model.lookupSection(".text.f").index}`),
  );
});

test("readElf() rejects a section size no number can hold", () => {
  const at = shdrOf(".text.f");
  rejects(
    mutate((v) => v.setBigUint64(at + SHDR.size, 1n << 62n, true)),
    "ELF_VALUE_TOO_LARGE",
  );
});

test("readElf() rejects an alignment that is not a power of two", () => {
  const at = shdrOf(".text.f");
  rejects(
    mutate((v) => v.setBigUint64(at + SHDR.addralign, 12n, true)),
    "ELF_BAD_ALIGNMENT",
  );
});

test("readElf() rejects e_shstrndx past the section table", () => {
  rejects(
    mutate((v) => v.setUint16(EHDR.shstrndx, model.sections.length, true)),
    "ELF_BAD_SECTION_INDEX",
  );
});

test("readElf() rejects an sh_link naming a missing section", () => {
  const at = shdrOf(".rela.text.f");
  rejects(
    mutate((v) => v.setUint32(at + SHDR.link, 5000, true)),
    "ELF_BAD_SECTION_INDEX",
    (e) => assert.equal(e.location.section, ".rela.text.f"),
  );
});

test("readElf() rejects a huge extended section count without allocating it", () => {
  rejects(
    mutate((v) => {
      v.setUint16(EHDR.shnum, 0, true);
      v.setBigUint64(shoff + SHDR.size, 1n << 40n, true);
    }),
    "ELF_TRUNCATED",
  );
});

test("readElf() rejects a section name outside .shstrtab", () => {
  const at = shdrOf(".text.f");
  rejects(
    mutate((v) => v.setUint32(at + SHDR.name, 0x7fffffff, true)),
    "ELF_BAD_STRING",
  );
});

test("readElf() rejects a symbol whose section index is out of range", () => {
  const sym = model.lookupSymbol("f");
  const at = fileOffsetOf(".symtab") + sym.index * SYM.SIZE;
  rejects(
    mutate((v) => v.setUint16(at + SYM.shndx, 999, true)),
    "ELF_BAD_SECTION_INDEX",
    (e) => {
      assert.equal(e.location.section, ".symtab");
      assert.equal(e.location.offset, sym.index * SYM.SIZE);
    },
  );
});

test("readElf() rejects a symbol name outside .strtab", () => {
  const sym = model.lookupSymbol("f");
  const at = fileOffsetOf(".symtab") + sym.index * SYM.SIZE;
  rejects(
    mutate((v) => v.setUint32(at + SYM.name, 0xffffff, true)),
    "ELF_BAD_STRING",
  );
});

test("readElf() rejects a symbol table whose entry size is not 24", () => {
  rejects(
    mutate((v) => v.setBigUint64(shdrOf(".symtab") + SHDR.entsize, 16n, true)),
    "ELF_BAD_ENTSIZE",
  );
});

test("readElf() rejects a second symbol table", () => {
  rejects(
    mutate((v) => v.setUint32(shdrOf(".strtab") + SHDR.type, SHT_SYMTAB, true)),
    "ELF_BAD_SYMTAB",
  );
});

test("readElf() rejects a relocation naming a missing symbol", () => {
  const at = fileOffsetOf(".rela.text.f");
  rejects(
    mutate((v) => v.setUint32(at + RELA.SIZE + RELA.sym, model.symbols.length, true)),
    "ELF_BAD_RELOC",
    (e) => {
      assert.equal(e.location.section, ".rela.text.f");
      assert.equal(e.location.offset, RELA.SIZE);
      assert.match(e.message, /symbol \d+ does not exist/);
    },
  );
});

test("readElf() rejects a relocation outside the section it applies to", () => {
  const at = fileOffsetOf(".rela.text.f");
  rejects(
    mutate((v) => v.setBigUint64(at + RELA.offset, 0x100000n, true)),
    "ELF_BAD_RELOC",
  );
});

test("readElf() rejects a relocation section without a section to apply to", () => {
  rejects(
    mutate((v) => v.setUint32(shdrOf(".rela.text.f") + SHDR.info, 0, true)),
    "ELF_BAD_RELOC",
  );
});

test("readElf() errors print the objtool way", () => {
  const at = fileOffsetOf(".rela.text.f");
  const bytes = mutate((v) => v.setUint32(at + RELA.sym, 0xffff, true));
  try {
    readElf(bytes, "fs/proc/cmdline.o");
    assert.fail("readElf() accepted a bad relocation");
  } catch (e) {
    assert.ok(e instanceof ElfError);
    assert.match(
      e.format(),
      /^fs\/proc\/cmdline\.o: error: \.rela\.text\.f\+0x0: Cannot read relocation 0: .* \[ELF_BAD_RELOC\]$/,
    );
  }
});

test("readElf() reads a Uint8Array that is a view at an offset into a larger buffer", () => {
  const big = new Uint8Array(good.bytes.length + 13);
  big.set(good.bytes, 13);
  const elf = readElf(big.subarray(13));
  assert.equal(elf.lookupSymbol("f").section?.name, ".text.f");
  assert.equal(elf.sections.length, model.sections.length);
});
