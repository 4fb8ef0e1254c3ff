import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createElf,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHN_ABS,
  SHT_PROGBITS,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FILE,
  STT_FUNC,
} from "../elf/index.js";
import { isDiffError } from "./diff-error.js";
import { indexObject } from "./object-index.js";
import { TargetSymbols } from "./target-symbols.js";

/** An object with a FILE symbol and local functions, standing for our original object. */
function objectWith(file: string, locals: string[]) {
  const elf = createElf({}, `${file}.o`);
  elf.addSymbol({ name: file, type: STT_FILE, shndx: SHN_ABS });
  for (const name of locals) {
    const sec = elf.addSection({
      name: `.text.${name}`,
      type: SHT_PROGBITS,
      flags: SHF_ALLOC | SHF_EXECINSTR,
      data: new Uint8Array(16),
    });
    elf.addSymbol({ name, type: STT_FUNC, bind: STB_LOCAL, section: sec, value: 0n, size: 16n });
  }
  return indexObject(elf);
}

test("fromSystemMap(): sympos counts same-named symbols in address order, 0 when unique", () => {
  const t = TargetSymbols.fromSystemMap(
    "ffffffff81000000 T _stext\nffffffff81000100 t helper\nffffffff81000200 T unique_fn\n",
  );
  const orig = objectWith("a.c", ["helper"]);
  assert.deepEqual(t.resolve("unique_fn", false, orig), {
    name: "unique_fn",
    sympos: 0,
    value: 0xffffffff81000200n,
  });
  assert.equal(t.resolve("helper", true, orig).sympos, 0);
});

test("fromSystemMap(): several locals of one name cannot be told apart without STT_FILE blocks", () => {
  const t = TargetSymbols.fromSystemMap("ffffffff81000100 t helper\nffffffff81000200 t helper\n");
  assert.throws(
    () => t.resolve("helper", true, objectWith("a.c", ["helper"])),
    (e: unknown) => isDiffError(e) && e.code === "DIFF_SYMPOS_AMBIGUOUS",
  );
});

test("fromElf(): the local in the STT_FILE block that fits our object wins; position in address order", () => {
  const vmlinux = createElf({ type: 2 }, "vmlinux");
  const text = vmlinux.addSection({
    name: ".text",
    type: SHT_PROGBITS,
    flags: SHF_ALLOC | SHF_EXECINSTR,
    data: new Uint8Array(0x100),
  });
  const add = (name: string, value: bigint, bind = STB_LOCAL) =>
    vmlinux.addSymbol({ name, type: STT_FUNC, bind, section: text, value, size: 8n });
  vmlinux.addSymbol({ name: "b.c", type: STT_FILE, shndx: SHN_ABS });
  add("helper", 0x80n);
  add("only_in_b", 0x88n);
  vmlinux.addSymbol({ name: "a.c", type: STT_FILE, shndx: SHN_ABS });
  add("helper", 0x40n);
  add("only_in_a", 0x48n);
  add("global_fn", 0x10n, STB_GLOBAL);
  const t = TargetSymbols.fromElf(vmlinux);
  const r = t.resolve("helper", true, objectWith("a.c", ["helper", "only_in_a"]));
  assert.deepEqual(r, { name: "helper", sympos: 1, value: 0x40n });
  assert.equal(t.resolve("helper", true, objectWith("b.c", ["helper", "only_in_b"])).sympos, 2);
  assert.throws(
    () => t.resolve("missing", true, objectWith("a.c", [])),
    (e: unknown) => isDiffError(e) && e.code === "DIFF_SYMBOL_NOT_IN_TARGET",
  );
});
