import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { currentBootId } from "../util/boot-id.js";
import { type Holder, LOCK_NAME, processStart, TreeLock } from "./tree-lock.js";
import { snapshotFiles, withLeftState } from "./tree-snapshot.js";

const PATCH = "--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-old\n+new\n";
const LOCK_JS = join(import.meta.dirname, "tree-lock.js");

function tree(): { dir: string; src: string; patch: string } {
  const dir = mkdtempSync(join(tmpdir(), "lock-test-"));
  const src = join(dir, "src");
  mkdirSync(src);
  writeFileSync(join(src, "f.c"), "old\n");
  writeFileSync(join(dir, "p.patch"), PATCH);
  return { dir, src, patch: join(dir, "p.patch") };
}

const deadPid = () => spawnSync("true").pid!;
const lockFile = (src: string) => join(src, LOCK_NAME);
/** The tree's entries: nothing of ours may be left once the lock is released. */
const entries = (src: string) => readdirSync(src).sort();

/** A dead holder's lock: `files` saved, then `patch` run and what it left recorded, as a run does. */
function writeLock(src: string, holder: Holder, files?: string[], patch?: () => void) {
  let snapshot = files ? snapshotFiles(src, files) : undefined;
  if (snapshot && patch) {
    patch();
    snapshot = withLeftState(src, snapshot);
  }
  writeFileSync(
    lockFile(src),
    JSON.stringify({ pid: holder.pid, holder, ...(snapshot ? { snapshot } : {}) }),
  );
}

test("acquire() restores the files a dead holder saved and left patched, then takes the lock", async () => {
  const { dir, src } = tree();
  try {
    writeLock(src, { pid: deadPid(), start: "1", boot: currentBootId() }, ["f.c"], () => {
      writeFileSync(join(src, "f.c"), "new\n"); // it died after patching
      writeFileSync(join(src, "f.c.orig"), "old\n");
    });
    const notes: string[] = [];
    const lock = await TreeLock.acquire(src, { timeoutMs: 2000, onNote: (m) => notes.push(m) });
    assert.equal(readFileSync(join(src, "f.c"), "utf8"), "old\n");
    assert.match(notes.join("\n"), /restoring .* left patched/);
    lock.release();
    assert.deepEqual(entries(src), ["f.c"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("acquire() after a dead holder never overwrites a file changed since it left it: TREE_NEEDS_REPAIR, both versions kept", async () => {
  const { dir, src } = tree();
  try {
    writeLock(src, { pid: deadPid(), start: "1", boot: currentBootId() }, ["f.c"], () =>
      writeFileSync(join(src, "f.c"), "new\n"),
    );
    writeFileSync(join(src, "f.c"), "new\nthe user's edit\n"); // made after it died
    for (let run = 0; run < 2; run++) {
      await assert.rejects(TreeLock.acquire(src, { timeoutMs: 2000 }), {
        code: "TREE_NEEDS_REPAIR",
        message:
          /f\.c changed since it left them; the originals it saved are in f\.c\.kpatch-ts-orig; keep the version you want, then remove .*\.kpatch-ts-build\.lock$/,
      });
      assert.equal(readFileSync(join(src, "f.c"), "utf8"), "new\nthe user's edit\n");
      assert.equal(readFileSync(join(src, "f.c.kpatch-ts-orig"), "utf8"), "old\n");
      assert.equal(existsSync(lockFile(src)), true, "the lock stays until the user removes it");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("acquire() after a holder that died before patching (or after restoring) leaves the tree as it is", async () => {
  const { dir, src } = tree();
  try {
    // Its files saved, the tree clean again: a restore rewrites nothing, applies nothing.
    writeLock(src, { pid: deadPid(), start: "1", boot: currentBootId() }, ["f.c"]);
    (await TreeLock.acquire(src, { timeoutMs: 2000 })).release();
    assert.equal(readFileSync(join(src, "f.c"), "utf8"), "old\n");
    assert.deepEqual(entries(src), ["f.c"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("acquire() never reverses a patch an older kpatch-ts may not have applied: TREE_NEEDS_REPAIR, tree untouched", async () => {
  const { dir, src, patch } = tree();
  try {
    writeFileSync(
      lockFile(src),
      JSON.stringify({ pid: deadPid(), applied: [{ path: patch, files: ["f.c"] }] }),
    );
    await assert.rejects(TreeLock.acquire(src, { timeoutMs: 2000 }), { code: "TREE_NEEDS_REPAIR" });
    assert.equal(readFileSync(join(src, "f.c"), "utf8"), "old\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("acquire() takes a lock whose pid lives on in another process (reused pid, other boot) or that is empty or corrupt", async () => {
  const me = { pid: process.pid, start: processStart(process.pid)!, boot: currentBootId() };
  for (const [what, content] of [
    ["a reused pid", { ...me, start: String(Number(me.start) + 1) }],
    ["another boot", { ...me, boot: "00000000-0000-0000-0000-000000000000" }],
    ["an empty file", ""],
    ["a corrupt file", '{"holder": {"pid": 1'],
  ] as const) {
    const { dir, src } = tree();
    try {
      if (typeof content === "string") writeFileSync(lockFile(src), content);
      else writeLock(src, content);
      const lock = await TreeLock.acquire(src, { timeoutMs: 1500 });
      lock.release();
      assert.deepEqual(entries(src), ["f.c"], what);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test("acquire() counts a holder in another pid namespace (a container sharing the tree) as alive", async () => {
  const { dir, src } = tree();
  try {
    writeLock(src, { pid: deadPid(), start: "1", boot: currentBootId(), pidns: "pid:[1]" });
    await assert.rejects(TreeLock.acquire(src, { timeoutMs: 500 }), { code: "TREE_BUSY" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("acquire() waits for a live holder: TREE_BUSY after its timeout, INTERRUPTED when stopped", async () => {
  const { dir, src } = tree();
  try {
    const first = await TreeLock.acquire(src, { timeoutMs: 1000 });
    let waitedFor = 0;
    await assert.rejects(TreeLock.acquire(src, { timeoutMs: 600, onWait: (pid) => (waitedFor = pid) }), {
      code: "TREE_BUSY",
    });
    assert.equal(waitedFor, process.pid);
    const stop = new AbortController();
    setTimeout(() => stop.abort("SIGINT"), 300);
    await assert.rejects(TreeLock.acquire(src, { signal: stop.signal }), { code: "INTERRUPTED" });
    first.release();
    (await TreeLock.acquire(src, { timeoutMs: 1000 })).release();
    assert.deepEqual(entries(src), ["f.c"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A child holding the lock: saves f.c, writes `content` into it, says "patched", waits. */
function holder(src: string, content: string) {
  const script = `
    import { readFileSync, writeFileSync } from "node:fs";
    import { TreeLock } from ${JSON.stringify(LOCK_JS)};
    const lock = await TreeLock.acquire(${JSON.stringify(src)}, { timeoutMs: 60000 });
    lock.saveFiles(["f.c"]);
    writeFileSync(${JSON.stringify(join(src, "f.c"))}, ${JSON.stringify(content)} + process.pid);
    lock.recordLeftState();
    process.stdout.write("patched\\n");
    await new Promise((r) => setTimeout(r, 150));
    const mine = readFileSync(${JSON.stringify(join(src, "f.c"))}, "utf8") === ${JSON.stringify(content)} + process.pid;
    lock.release();
    process.stdout.write(mine ? "clean\\n" : "disturbed\\n");
    if (process.argv.includes("--hang")) await new Promise(() => {});
  `;
  return spawn("node", ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
}

test("a holder killed after patching: the next acquire() restores the tree", async () => {
  const { dir, src } = tree();
  try {
    const child = holder(src, "half-applied by ");
    await new Promise<void>((resolve) => child.stdout.on("data", () => resolve()));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("close", resolve));
    assert.match(readFileSync(join(src, "f.c"), "utf8"), /half-applied/);
    (await TreeLock.acquire(src, { timeoutMs: 2000 })).release();
    assert.equal(readFileSync(join(src, "f.c"), "utf8"), "old\n");
    assert.deepEqual(entries(src), ["f.c"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("runs racing to clean one stale lock: one at a time holds the tree, none undoes another", async () => {
  const { dir, src } = tree();
  try {
    writeLock(src, { pid: deadPid(), start: "1", boot: currentBootId() }, ["f.c"], () =>
      writeFileSync(join(src, "f.c"), "left patched\n"),
    );
    const children = Array.from({ length: 4 }, () => holder(src, "patched by "));
    const outputs = await Promise.all(
      children.map(
        (c) =>
          new Promise<string>((resolve) => {
            let out = "";
            c.stdout.on("data", (d: Buffer) => (out += d.toString()));
            c.on("close", () => resolve(out));
          }),
      ),
    );
    for (const o of outputs) assert.equal(o, "patched\nclean\n");
    assert.equal(readFileSync(join(src, "f.c"), "utf8"), "old\n");
    assert.deepEqual(entries(src), ["f.c"]);
    assert.equal(existsSync(lockFile(src)), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("saveFiles() refuses a patch that would write the lock's own files", async () => {
  const { dir, src } = tree();
  try {
    const lock = await TreeLock.acquire(src, { timeoutMs: 1000 });
    assert.throws(() => lock.saveFiles([LOCK_NAME]), { code: "PATCH_UNSAFE_PATH" });
    lock.release();
    assert.deepEqual(entries(src), ["f.c"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
