import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { execCheck } from "../../util/exec.js";
import { fixModuleName } from "./triage.js";
import { filesPatch, parseDiffReport, updateChanges } from "./update-diff.js";

function write(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

test("updateChanges() sorts a real diff -rq into fixes, headers, other, added and removed", async () => {
  const top = mkdtempSync(join(tmpdir(), "update-diff-"));
  try {
    const [a, b] = [join(top, "old"), join(top, "new")];
    const same = { "mm/same.c": "int s;\n", "include/linux/same.h": "#define S 1\n" };
    write(a, {
      ...same,
      "mm/memory.c": "int x = 1;\n",
      "include/linux/mm.h": "#define A 1\n",
      "mm/Makefile": "obj-y += a.o\n",
      "mm/gone.c": "",
    });
    write(b, {
      ...same,
      "mm/memory.c": "int x = 2;\n",
      "include/linux/mm.h": "#define A 2\n",
      "mm/Makefile": "obj-y += b.o\n",
      "mm/new.c": "",
      "tools/t.c": "",
    });
    write(a, { "tools/t.c": "old" });
    const got = await updateChanges(a, b, join(top, "changes.json"));
    assert.deepEqual(got, {
      sources: ["mm/memory.c"],
      headers: ["include/linux/mm.h"],
      other: ["mm/Makefile", "tools/t.c"],
      added: ["mm/new.c"],
      removed: ["mm/gone.c"],
    });
    // The patch applies to the old tree with patch -p1 and makes it the new one there.
    const patch = await filesPatch(a, b, ["mm/memory.c", "include/linux/mm.h"]);
    assert.match(patch, /^--- a\/mm\/memory\.c\n\+\+\+ b\/mm\/memory\.c\n/);
    writeFileSync(join(top, "fix.patch"), patch);
    await execCheck("patch", ["-p1", "-d", a, "-i", join(top, "fix.patch")], { what: "patch" });
    await execCheck("diff", ["-u", join(a, "mm/memory.c"), join(b, "mm/memory.c")], { what: "diff" });
    await assert.rejects(filesPatch(a, b, ["mm/same.c"]), { code: "TRIAGE_SOURCE" });
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});

test("parseDiffReport() takes a directory only in the new tree as one added entry", () => {
  const r = parseDiffReport("Only in /n/drivers: newdrv\nOnly in /o: CREDITS\n", "/o", "/n");
  assert.deepEqual(r.added, ["drivers/newdrv"]);
  assert.deepEqual(r.removed, ["CREDITS"]);
});

test("fixModuleName() keeps a module name the kernel accepts, unique per file", () => {
  assert.equal(fixModuleName("mm/memory.c"), "livepatch-mm-memory");
  const long = fixModuleName("drivers/gpu/drm/amd/display/dc/core/dc_link_enc_cfg.c");
  const other = fixModuleName("drivers/gpu/drm/amd/display/dc/core/dc_link_enc_cfh.c");
  assert.ok(long.length <= 55 && other.length <= 55);
  assert.notEqual(long, other);
  assert.match(long, /^[A-Za-z0-9_-]+$/);
});
