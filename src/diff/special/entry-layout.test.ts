import assert from "node:assert/strict";
import { test } from "node:test";
import { createElf, R_X86_64_64, R_X86_64_PC32, SHF_ALLOC, SHT_PROGBITS } from "../../elf/index.js";
import { isDiffError } from "../diff-error.js";
import { checkEntryLayout } from "./entry-layout.js";

/** A section of `size` bytes with PC32 (or 64) relocations at `offsets`; checked at `entry`. */
function check(size: number, offsets: number[], entry: number, wide: number[] = []): string | undefined {
  const file = createElf();
  const sec = file.addSection({
    name: ".altinstructions",
    type: SHT_PROGBITS,
    flags: SHF_ALLOC,
    data: new Uint8Array(size),
  });
  const symbol = file.ensureSectionSymbol(sec);
  const relocs = offsets.map((offset) =>
    file.addReloc(sec, { offset, type: wide.includes(offset) ? R_X86_64_64 : R_X86_64_PC32, symbol }),
  );
  try {
    checkEntryLayout({ file: "x.o", sec, relocs, size: entry, anchor: 0 });
    return undefined;
  } catch (e) {
    assert.ok(isDiffError(e) && e.code === "DIFF_BAD_ENTRY_SIZE", String(e));
    return e.message;
  }
}

test("checkEntryLayout() accepts an entry without a relocation where its field is a constant (4.x '.long 0')", () => {
  assert.equal(check(39, [0, 4, 13, 26, 30], 13), undefined);
});

test("checkEntryLayout() refuses a field that runs past its entry (12-byte entries cut at 13)", () => {
  assert.match(
    check(168, [0, 4, 12, 16, 24, 28], 13) ?? "",
    /entry 0 has a 4-byte relocated field at \+12, past the entry's end/,
  );
});

test("checkEntryLayout() refuses fields of different entries that overlap (16-byte entries cut at 12)", () => {
  assert.match(
    check(32, [0, 16], 12, [0, 16]) ?? "",
    /entry 1 has relocations at offsets \[4\], entry 0 at \[0\]/,
  );
});

test("checkEntryLayout() refuses an entry without its anchor (16-byte entries cut at 8)", () => {
  assert.match(check(32, [0, 16], 8, [0, 16]) ?? "", /entry 1 has no relocation at \+0/);
});

test("checkEntryLayout() refuses a last entry cut inside a relocated field, not one short by its padding", () => {
  assert.equal(check(28, [0, 8, 16, 24], 16, [0, 16]), undefined);
  assert.match(
    check(26, [0, 8, 16, 24], 16, [0, 16]) ?? "",
    /its size 26 cuts the last entry \(10 of 16 bytes\) inside a relocated field/,
  );
});
