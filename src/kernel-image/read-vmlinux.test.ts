import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { after } from "node:test";
import { readElf } from "../elf/index.js";
import { DEBUG_SECTION, readVmlinuxWithoutDebug } from "./read-vmlinux.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-read-vmlinux-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A linked program with DWARF, built by this machine's gcc. */
function linkedWithDebug(): string {
  const src = join(dir, "prog.c");
  writeFileSync(
    src,
    "static int counter;\nint bump(int x) { return counter += x; }\nint main(void) { return bump(2); }\n",
  );
  const out = join(dir, "prog");
  execFileSync("gcc", ["-g", "-O1", "-o", out, src]);
  return out;
}

test("every section but .debug_* is read byte for byte; the debug ones are left as zeros", () => {
  const path = linkedWithDebug();
  const whole = readElf(readFileSync(path), path);
  const sparse = readElf(readVmlinuxWithoutDebug(path), path);
  const debug = whole.sections.filter((s) => DEBUG_SECTION.test(s.name));
  assert.ok(
    debug.some((s) => s.name === ".debug_info" && s.data.some((b) => b !== 0)),
    "gcc -g wrote DWARF",
  );
  assert.equal(sparse.sections.length, whole.sections.length);
  whole.sections.forEach((s, i) => {
    const t = sparse.sections[i]!;
    assert.equal(t.name, s.name);
    if (DEBUG_SECTION.test(s.name))
      assert.ok(
        t.data.every((b) => b === 0),
        `${s.name} not read`,
      );
    else assert.deepEqual(t.data, s.data, s.name);
  });
  assert.deepEqual(
    sparse.symbols.map((s) => [s.name, s.value, s.size]),
    whole.symbols.map((s) => [s.name, s.value, s.size]),
  );
});

test("a file that is not ELF64 little-endian, or whose section table is cut off, is read whole", () => {
  const text = join(dir, "not-elf");
  writeFileSync(text, "just some text, not an ELF file at all ".repeat(4));
  assert.deepEqual(Buffer.from(readVmlinuxWithoutDebug(text)), readFileSync(text));
  const cut = join(dir, "cut");
  const bytes = readFileSync(linkedWithDebug());
  writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
  assert.deepEqual(Buffer.from(readVmlinuxWithoutDebug(cut)), readFileSync(cut));
});
