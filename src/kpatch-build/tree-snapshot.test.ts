import assert from "node:assert/strict";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { restoreSnapshot, snapshotFiles } from "./tree-snapshot.js";

function tree(): string {
  const t = mkdtempSync(join(tmpdir(), "snapshot-test-"));
  mkdirSync(join(t, "fs"));
  writeFileSync(join(t, "fs/a.c"), "int a;\n");
  chmodSync(join(t, "fs/a.c"), 0o640);
  utimesSync(join(t, "fs/a.c"), 1_600_000_000.123456, 1_600_000_000.654321);
  return t;
}

/** Everything about the files under `t` that a build could see: names, bytes, modes, mtimes. */
function state(t: string): string[] {
  return readdirSync(t, { recursive: true, withFileTypes: true })
    .map((e) => {
      const p = join(e.parentPath, e.name);
      const st = statSync(p, { bigint: true });
      const bytes = e.isFile() ? readFileSync(p).toString("hex") : "dir";
      return `${p} ${st.mode.toString(8)} ${e.isFile() ? st.mtimeNs / 1000n : ""} ${bytes}`;
    })
    .sort();
}

test("restoreSnapshot() puts back content, mode and mtime, and removes what patch created", () => {
  const t = tree();
  try {
    const before = state(t);
    const snap = snapshotFiles(t, ["fs/a.c", "new/dir/n.c"]);
    writeFileSync(join(t, "fs/a.c"), "int a = 2;\n");
    chmodSync(join(t, "fs/a.c"), 0o755);
    writeFileSync(join(t, "fs/a.c.orig"), "backup");
    writeFileSync(join(t, "fs/a.c.rej"), "reject");
    writeFileSync(join(t, "fs/a.c.oAb3xYz"), "patch's temporary, left by a kill");
    mkdirSync(join(t, "new/dir"), { recursive: true });
    writeFileSync(join(t, "new/dir/n.c"), "new file");
    restoreSnapshot(t, snap);
    assert.deepEqual(state(t), before);
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});

test("restoreSnapshot() leaves files that are as saved untouched, and can run twice", () => {
  const t = tree();
  try {
    const snap = snapshotFiles(t, ["fs/a.c"]);
    const ino = statSync(join(t, "fs/a.c")).ino;
    restoreSnapshot(t, snap);
    restoreSnapshot(t, snap);
    assert.equal(statSync(join(t, "fs/a.c")).ino, ino);
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});

test("restoreSnapshot() fails with TREE_RESTORE_FAILED naming what it cannot put back", () => {
  const t = tree();
  try {
    const snap = snapshotFiles(t, ["new/n.c"]);
    mkdirSync(join(t, "new"));
    writeFileSync(join(t, "new/n.c"), "x");
    writeFileSync(join(t, "new/users-own.c"), "not ours to delete");
    const snapA = snapshotFiles(t, ["fs/a.c"]);
    rmSync(join(t, "fs/a.c"));
    mkdirSync(join(t, "fs/a.c"));
    writeFileSync(join(t, "fs/a.c/users-own.c"), "not ours to delete");
    assert.throws(() => restoreSnapshot(t, snap), {
      code: "TREE_RESTORE_FAILED",
      message: /new\/: holds files not ours/,
    });
    assert.throws(() => restoreSnapshot(t, snapA), {
      code: "TREE_RESTORE_FAILED",
      message: /fs\/a\.c: a directory is there now/,
    });
    assert.equal(readFileSync(join(t, "new/users-own.c"), "utf8"), "not ours to delete");
    assert.equal(readFileSync(join(t, "fs/a.c/users-own.c"), "utf8"), "not ours to delete");
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
});
