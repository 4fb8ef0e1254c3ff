import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { applyPatches, readPatch, revertPatches, touchedFiles } from "./patch-file.js";

const DIFF_A = `diff --git a/fs/a.c b/fs/a.c
--- a/fs/a.c
+++ b/fs/a.c
@@ -1,3 +1,3 @@
 int a(void)
 {
-\treturn 1;
+\treturn 2;
`;
const DIFF_B_BAD = `--- a/fs/b.c\t2024-01-01
+++ b/fs/b.c\t2024-01-01
@@ -1,1 +1,1 @@
-nothing like this
+x
`;

function tree(): string {
  const t = mkdtempSync(join(tmpdir(), "patch-test-"));
  mkdirSync(join(t, "fs"));
  writeFileSync(join(t, "fs/a.c"), "int a(void)\n{\n\treturn 1;\n}\n");
  writeFileSync(join(t, "fs/b.c"), "int b;\n");
  return t;
}

test("touchedFiles() reads +++ lines, stripping a/ b/ and timestamps", () => {
  assert.deepEqual(touchedFiles(DIFF_A + DIFF_B_BAD), ["fs/a.c", "fs/b.c"]);
});

test("applyPatches() then revertPatches() leaves the tree as it was", async () => {
  const t = tree();
  try {
    writeFileSync(join(t, "a.patch"), DIFF_A);
    const p = readPatch(join(t, "a.patch"));
    await applyPatches(t, [p]);
    assert.match(readFileSync(join(t, "fs/a.c"), "utf8"), /return 2/);
    await revertPatches(t, [p]);
    assert.equal(readFileSync(join(t, "fs/a.c"), "utf8"), "int a(void)\n{\n\treturn 1;\n}\n");
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});

test("applyPatches() with a patch that does not apply fails with PATCH_FAILED and reverts the ones before", async () => {
  const t = tree();
  try {
    writeFileSync(join(t, "a.patch"), DIFF_A);
    writeFileSync(join(t, "b.patch"), DIFF_B_BAD);
    await assert.rejects(applyPatches(t, [readPatch(join(t, "a.patch")), readPatch(join(t, "b.patch"))]), {
      code: "PATCH_FAILED",
    });
    assert.match(readFileSync(join(t, "fs/a.c"), "utf8"), /return 1/);
    assert.equal(readFileSync(join(t, "fs/b.c"), "utf8"), "int b;\n");
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});

test("readPatch() rejects a file that is not a patch", () => {
  const t = mkdtempSync(join(tmpdir(), "patch-test-"));
  try {
    writeFileSync(join(t, "x.patch"), "hello\n");
    assert.throws(() => readPatch(join(t, "x.patch")), { code: "PATCH_EMPTY" });
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});
