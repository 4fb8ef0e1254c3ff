import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { applyPatches, readPatch } from "./patch-file.js";
import { TreeLock } from "./tree-lock.js";

const PATCH = "--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-old\n+new\n";

function tree(): { dir: string; patch: string } {
  const dir = mkdtempSync(join(tmpdir(), "lock-test-"));
  mkdirSync(join(dir, "src"));
  writeFileSync(join(dir, "src", "f.c"), "old\n");
  writeFileSync(join(dir, "p.patch"), PATCH);
  return { dir, patch: join(dir, "p.patch") };
}

test("TreeLock.acquire() reverts what a dead holder left applied, then takes the lock", async () => {
  const { dir, patch } = tree();
  try {
    const src = join(dir, "src");
    const p = readPatch(patch);
    await applyPatches(src, [p]);
    const dead = spawnSync("true").pid!; // a pid that has exited
    writeFileSync(join(src, ".kpatch-ts-build.lock"), JSON.stringify({ pid: dead, applied: [p] }));
    const lock = await TreeLock.acquire(src, 5000);
    assert.equal(readFileSync(join(src, "f.c"), "utf8"), "old\n");
    lock.release();
    assert.equal(existsSync(join(src, ".kpatch-ts-build.lock")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("TreeLock.acquire() waits for a live holder and fails with TREE_BUSY after its timeout", async () => {
  const { dir } = tree();
  try {
    const src = join(dir, "src");
    const first = await TreeLock.acquire(src, 1000);
    let waitedFor = 0;
    await assert.rejects(
      TreeLock.acquire(src, 800, (pid) => (waitedFor = pid)),
      { code: "TREE_BUSY" },
    );
    assert.equal(waitedFor, process.pid);
    first.release();
    (await TreeLock.acquire(src, 1000)).release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
