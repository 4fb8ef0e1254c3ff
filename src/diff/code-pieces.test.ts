import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createElf,
  type ElfSection,
  R_X86_64_PC32,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHT_PROGBITS,
  STB_GLOBAL,
  STT_FUNC,
} from "../elf/index.js";
import { codePieceProblem, codePiecesOf, findCodePieceInsn } from "./code-pieces.js";

/** testb $1,flags(%rip) (7) / jnz rel32 (6) / jmp rel32 (5): one static_cpu_has() slow path. */
const SLOW_PATH = [0xf6, 0x05, 0, 0, 0, 0, 0x01, 0x0f, 0x85, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0];

/** An .altinstr_aux of `bytes`; `relocated` pieces (18 bytes each) get their three relocations. */
function auxSection(bytes: number[], relocated: number): ElfSection {
  const elf = createElf({}, "aux.o");
  const text = elf.addSection({
    name: ".text.f",
    type: SHT_PROGBITS,
    flags: SHF_ALLOC | SHF_EXECINSTR,
    data: new Uint8Array(64),
  });
  elf.addSymbol({ name: "f", type: STT_FUNC, section: text, size: 64n });
  const flags = elf.addSymbol({ name: "boot_cpu_data", bind: STB_GLOBAL });
  const aux = elf.addSection({
    name: ".altinstr_aux",
    type: SHT_PROGBITS,
    flags: SHF_ALLOC | SHF_EXECINSTR,
    data: Uint8Array.from(bytes),
  });
  const back = elf.ensureSectionSymbol(text);
  for (let i = 0; i < relocated; i++) {
    const at = i * SLOW_PATH.length;
    elf.addReloc(aux, { offset: at + 2, type: R_X86_64_PC32, symbol: flags, addend: 0x10n - 5n });
    elf.addReloc(aux, { offset: at + 9, type: R_X86_64_PC32, symbol: back, addend: 0x20n - 4n });
    elf.addReloc(aux, { offset: at + 14, type: R_X86_64_PC32, symbol: back, addend: 0x30n - 4n });
  }
  return aux;
}

test("codePiecesOf() cuts .altinstr_aux after each jmp, with each piece's relocations", () => {
  const aux = auxSection([...SLOW_PATH, ...SLOW_PATH], 2);
  const pieces = codePiecesOf(aux);
  assert.deepEqual(
    pieces.map((p) => [p.start, p.end, p.relocs.length, p.problem]),
    [
      [0, 18, 3, undefined],
      [18, 36, 3, undefined],
    ],
  );
  assert.equal(codePieceProblem(aux, 18), undefined);
  assert.match(codePieceProblem(aux, 7) ?? "", /the middle of a piece .*starts at \+0x0/);
  assert.match(codePieceProblem(aux, 36) ?? "", /no code there/);
});

test("findCodePieceInsn() finds the testb whose immediate follows the relocated field", () => {
  const aux = auxSection(SLOW_PATH, 1);
  const insn = findCodePieceInsn(aux, 2)!;
  assert.equal(insn.offset + insn.length - 2, 5);
});

test("a piece whose branch leaves it without a relocation cannot be copied alone", () => {
  // testb $1,%al; jnz +5 (rel8, into the next piece); jmp; jmp
  const bytes = [0xa8, 0x01, 0x75, 0x05, 0xe9, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0];
  const aux = auxSection(bytes, 0);
  assert.match(codePiecesOf(aux)[0]!.problem ?? "", /branches from \+0x2 to \+0x9, outside itself/);
});

test("a RIP-relative operand without a relocation cannot be copied alone", () => {
  const aux = auxSection(SLOW_PATH, 0);
  assert.match(
    codePiecesOf(aux)[0]!.problem ?? "",
    /addresses memory relative to \+0x0 without a relocation/,
  );
});

test("code without a jump back, or bytes that do not decode, are problems", () => {
  const tail = auxSection([...SLOW_PATH, 0x90, 0x90], 1);
  assert.deepEqual(
    codePiecesOf(tail).map((p) => [p.start, p.end]),
    [
      [0, 18],
      [18, 20],
    ],
  );
  assert.match(codePiecesOf(tail)[1]!.problem ?? "", /runs off the end/);
  const bad = auxSection([...SLOW_PATH, 0x0f, 0xff], 1);
  assert.match(codePiecesOf(bad)[1]!.problem ?? "", /bytes at \+0x12 that do not decode/);
});
