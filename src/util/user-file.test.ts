import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { checkOutputFile, checkUserDir, readUserFile } from "./user-file.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-user-file-"));

test("readUserFile() reads a regular file, also through a symbolic link", () => {
  writeFileSync(join(dir, "a"), "abc");
  symlinkSync(join(dir, "a"), join(dir, "link"));
  assert.equal(readUserFile(join(dir, "a"), "INPUT_FILE").toString(), "abc");
  assert.equal(readUserFile(join(dir, "link"), "INPUT_FILE").toString(), "abc");
});

test("readUserFile() refuses a FIFO at once instead of hanging, a directory, a device, a missing file", () => {
  const fifo = join(dir, "fifo.ko");
  execFileSync("mkfifo", [fifo]);
  const started = performance.now();
  assert.throws(() => readUserFile(fifo, "INPUT_FILE"), {
    code: "INPUT_FILE",
    message: `Cannot read ${fifo}: a FIFO, not a regular file`,
  });
  assert.ok(performance.now() - started < 1000);
  mkdirSync(join(dir, "d.ko"));
  assert.throws(() => readUserFile(join(dir, "d.ko"), "INPUT_FILE"), {
    message: /: a directory, not a regular file$/,
  });
  assert.throws(() => readUserFile("/dev/null", "INPUT_FILE"), {
    message: /: a device, not a regular file$/,
  });
  assert.throws(() => readUserFile(join(dir, "nope"), "INPUT_FILE"), {
    message: /: no such file or directory$/,
  });
  symlinkSync(join(dir, "gone"), join(dir, "dangling"));
  assert.throws(() => readUserFile(join(dir, "dangling"), "INPUT_FILE"), {
    message: /: no such file or directory$/,
  });
});

test("checkUserDir() and checkOutputFile() name a directory that is missing or not one", () => {
  checkUserDir(dir, "INPUT_FILE");
  checkOutputFile(join(dir, "out.o"), "INPUT_FILE");
  assert.throws(() => checkOutputFile("/nonexistent/dir/out.o", "INPUT_FILE"), {
    code: "INPUT_FILE",
    message:
      "Cannot use /nonexistent/dir as the directory for /nonexistent/dir/out.o: no such file or directory",
  });
  assert.throws(() => checkUserDir(join(dir, "a"), "INPUT_FILE", "output directory"), {
    message: `Cannot use ${join(dir, "a")} as the output directory: not a directory`,
  });
});
