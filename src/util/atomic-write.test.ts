import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createAtomic, writeFileAtomic } from "./atomic-write.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-atomic-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("writeFileAtomic() writes the whole content and leaves no temporary file", () => {
  const path = join(dir, "a", "big.bin");
  const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 0xff);
  writeFileAtomic(path, data);
  assert.deepEqual(new Uint8Array(readFileSync(path)), data);
  writeFileAtomic(path, "replaced\n");
  assert.equal(readFileSync(path, "utf8"), "replaced\n");
  assert.deepEqual(readdirSync(join(dir, "a")), ["big.bin"]);
});

test("writeFileAtomic() that cannot rename keeps the old state and removes its temporary file", () => {
  const sub = join(dir, "b");
  const target = join(sub, "taken");
  mkdirSync(join(target, "child"), { recursive: true });
  assert.throws(() => writeFileAtomic(target, "x"), /EISDIR|ENOTEMPTY|EEXIST/);
  assert.deepEqual(readdirSync(sub), ["taken"]);
});

test("createAtomic() renames what the producer made, and removes it when the producer fails", async () => {
  const sub = join(dir, "c");
  const path = join(sub, "out.o");
  await assert.rejects(
    createAtomic(path, (tmp) => {
      writeFileAtomic(tmp, "half");
      throw new Error("compiler failed");
    }),
    /compiler failed/,
  );
  assert.deepEqual(readdirSync(sub), []);
  const got = await createAtomic(path, (tmp) => {
    writeFileAtomic(tmp, "whole");
    return 7;
  });
  assert.equal(got, 7);
  assert.equal(readFileSync(path, "utf8"), "whole");
  assert.deepEqual(readdirSync(sub), ["out.o"]);
});

test("createAtomic() replaces a symlink in one step", async () => {
  const link = join(dir, "d", "current");
  mkdirSync(join(dir, "d", "one"), { recursive: true });
  mkdirSync(join(dir, "d", "two"));
  await createAtomic(link, (tmp) => symlinkSync(join(dir, "d", "one"), tmp));
  await createAtomic(link, (tmp) => symlinkSync(join(dir, "d", "two"), tmp));
  assert.equal(readlinkSync(link), join(dir, "d", "two"));
  assert.deepEqual(readdirSync(join(dir, "d")).sort(), ["current", "one", "two"]);
});
