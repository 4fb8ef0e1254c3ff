import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { applyPatches, readPatch, touchedFiles } from "./patch-file.js";

const DIFF_A = `diff --git a/fs/a.c b/fs/a.c
--- a/fs/a.c
+++ b/fs/a.c
@@ -1,4 +1,4 @@
 int a(void)
 {
-\treturn 1;
+\treturn 2;
 }
`;
const DIFF_B_BAD = `--- a/fs/b.c\t2024-01-01
+++ b/fs/b.c\t2024-01-01
@@ -1,1 +1,1 @@
-nothing like this
+x
`;
const A_C = "int a(void)\n{\n\treturn 1;\n}\n";

function tree(): string {
  const t = mkdtempSync(join(tmpdir(), "patch-test-"));
  mkdirSync(join(t, "fs"));
  writeFileSync(join(t, "fs/a.c"), A_C);
  writeFileSync(join(t, "fs/b.c"), "int b;\n");
  return t;
}

test("touchedFiles() reads +++ lines, stripping a/ b/ and timestamps", () => {
  assert.deepEqual(touchedFiles(DIFF_A + DIFF_B_BAD), ["fs/a.c", "fs/b.c"]);
});

test("touchedFiles() takes hunk lines that read like ---/+++ headers for content", () => {
  const diff = `--- a/fs/a.c
+++ b/fs/a.c
@@ -1,3 +1,3 @@
 x
--- a/fs/evil.c
+++ b/fs/evil.c
 y
`;
  assert.deepEqual(touchedFiles(diff), ["fs/a.c"]);
});

test("touchedFiles() strips one component whatever it is (-p1), and reads git renames", () => {
  const diff = `--- linux.orig/fs/a.c
+++ linux/fs/a.c
@@ -1 +1 @@
-a
+b
diff --git a/fs/old.c b/fs/new.c
similarity index 100%
rename from fs/old.c
rename to fs/new.c
`;
  assert.deepEqual(touchedFiles(diff), ["fs/a.c", "fs/new.c", "fs/old.c"]);
});

test("touchedFiles() refuses a name outside the tree", () => {
  for (const name of ["a/../../etc/passwd", "a/b/../../../x", "a//etc/x/../../.."]) {
    assert.throws(() => touchedFiles(`--- ${name}\n+++ ${name}\n@@ -1 +1 @@\n-a\n+b\n`), {
      code: "PATCH_UNSAFE_PATH",
    });
  }
});

test("applyPatches() applies, and fails with PATCH_FAILED naming the patch that does not apply", async () => {
  const t = tree();
  try {
    writeFileSync(join(t, "a.patch"), DIFF_A);
    writeFileSync(join(t, "b.patch"), DIFF_B_BAD);
    await assert.rejects(applyPatches(t, [readPatch(join(t, "a.patch")), readPatch(join(t, "b.patch"))]), {
      code: "PATCH_FAILED",
      location: { file: join(t, "b.patch") },
    });
    assert.match(readFileSync(join(t, "fs/a.c"), "utf8"), /return 2/);
    assert.deepEqual(readdirSync(join(t, "fs")).sort(), ["a.c", "b.c"], "no .rej left");
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});

test("applyPatches() refuses a hunk placed by offset or fuzz unless allowed, and leaves no .orig", async () => {
  for (const [what, content, expect] of [
    ["offset", `// one\n// two\n${A_C}`, { offset: 2, fuzz: 0, line: 3 }],
    ["fuzz", "int a(int x)\n{\n\treturn 1;\n}\n", { offset: 0, fuzz: 1, line: 1 }],
  ] as const) {
    const t = tree();
    try {
      writeFileSync(join(t, "fs/a.c"), content);
      writeFileSync(join(t, "a.patch"), DIFF_A);
      const p = readPatch(join(t, "a.patch"));
      await assert.rejects(applyPatches(t, [p]), { code: "PATCH_INEXACT" }, what);
      assert.equal(readFileSync(join(t, "fs/a.c"), "utf8"), content, `${what}: untouched`);
      const hunks = await applyPatches(t, [p], { allowFuzz: true });
      assert.deepEqual(hunks, [{ patch: p.path, file: "fs/a.c", hunk: 1, ...expect }], what);
      assert.match(readFileSync(join(t, "fs/a.c"), "utf8"), /return 2/);
      assert.deepEqual(readdirSync(join(t, "fs")).sort(), ["a.c", "b.c"], `${what}: no backup left`);
    } finally {
      rmSync(t, { recursive: true, force: true });
    }
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
