/**
 * buildPatchedObjects() on a small kbuild-like tree of real files: a source, a header, and the
 * .cmd record kbuild would write for an O= build (absolute, resolved paths), compiled with the
 * real gcc and patched with the real patch(1).
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import test from "node:test";
import { Progress } from "../util/progress.js";
import { readPatch } from "./patch-file.js";
import { buildPatchedObjects, type PatchedBuildOptions } from "./patched-objects.js";
import { LOCK_NAME, TreeLock } from "./tree-lock.js";

const HELLO_C = '#include "hello.h"\nint hello(void)\n{\n\treturn VALUE;\n}\n';
const PATCH = `--- a/hello.c
+++ b/hello.c
@@ -2,4 +2,4 @@
 int hello(void)
 {
-\treturn VALUE;
+\treturn VALUE + 1; /* PATCHED */
 }
`;

interface Mini {
  root: string;
  srcDir: string;
  buildDir: string;
  cacheDir: string;
  workDir: string;
  patch: string;
}

/** `extra` is appended to kbuild's command (a shell string), e.g. to act on the patched build. */
function miniTree(extra = (_src: string) => ""): Mini {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "mini-tree-")));
  const srcDir = join(root, "src");
  const buildDir = join(root, "build");
  mkdirSync(srcDir);
  mkdirSync(buildDir);
  writeFileSync(join(srcDir, "hello.c"), HELLO_C);
  writeFileSync(join(srcDir, "hello.h"), "#define VALUE 1\n");
  const cmd = `gcc -Wp,-MMD,./.hello.o.d -D__KERNEL__ -O2 -c -o hello.o ${srcDir}/hello.c${extra(srcDir)}`;
  writeFileSync(
    join(buildDir, ".hello.o.cmd"),
    `savedcmd_hello.o := ${cmd}\n\nsource_hello.o := ${srcDir}/hello.c\n\ndeps_hello.o := \\\n  ${srcDir}/hello.c \\\n  ${srcDir}/hello.h \\\n    $(wildcard include/config/HELLO) \\\n\nhello.o: $(deps_hello.o)\n\n$(deps_hello.o):\n`,
  );
  writeFileSync(join(root, "hello.patch"), PATCH);
  const workDir = join(root, "work");
  mkdirSync(workDir);
  return {
    root,
    srcDir,
    buildDir,
    cacheDir: join(root, "cache", "objects"),
    workDir,
    patch: join(root, "hello.patch"),
  };
}

const cache = mkdtempSync(join(tmpdir(), "mini-cache-"));
process.env["KPATCH_TS_CACHE"] = cache;
test.after(() => rmSync(cache, { recursive: true, force: true }));

function build(t: Mini, extra: Partial<PatchedBuildOptions> = {}) {
  return buildPatchedObjects({
    tree: { srcDir: t.srcDir, buildDir: t.buildDir, cacheDir: t.cacheDir },
    patches: [readPatch(t.patch)],
    workDir: t.workDir,
    progress: new Progress({ quiet: true }),
    jobs: 1,
    ...extra,
  });
}

const clean = (t: Mini) => {
  assert.equal(readFileSync(join(t.srcDir, "hello.c"), "utf8"), HELLO_C, "the source is as before");
  assert.deepEqual(readdirSync(t.srcDir).sort(), ["hello.c", "hello.h"], "nothing left in the tree");
};

test("buildPatchedObjects() finds, compiles and compares the object, and restores the tree", async () => {
  const t = miniTree();
  try {
    const built = await build(t);
    assert.deepEqual(
      built.changed.map((o) => o.path),
      ["hello.o"],
    );
    clean(t);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() on an in-tree build, whose kbuild records name files relative to the tree", async () => {
  const t = miniTree();
  try {
    const cmd = readFileSync(join(t.buildDir, ".hello.o.cmd"), "utf8").replaceAll(`${t.srcDir}/`, "");
    writeFileSync(join(t.srcDir, ".hello.o.cmd"), cmd);
    const built = await build(t, { tree: { srcDir: t.srcDir, buildDir: t.srcDir, cacheDir: t.cacheDir } });
    assert.deepEqual(
      built.changed.map((o) => [o.path, o.source]),
      [["hello.o", join(t.srcDir, "hello.c")]],
    );
    assert.equal(readFileSync(join(t.srcDir, "hello.c"), "utf8"), HELLO_C);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() compiles originals only once it holds the tree (not from another run's patched tree)", async () => {
  const t = miniTree();
  try {
    const other = await TreeLock.acquire(t.srcDir);
    other.saveFiles(["hello.c"]);
    writeFileSync(join(t.srcDir, "hello.c"), HELLO_C.replace("VALUE;", "VALUE + 1; /* PATCHED */"));
    const run = build(t);
    await new Promise((r) => setTimeout(r, 700));
    other.release();
    const built = await run;
    assert.equal(built.changed.length, 1, "the original is the unpatched source");
    clean(t);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() does not reuse a cached original when a header it includes changed", async () => {
  const t = miniTree();
  try {
    const first = await build(t);
    const orig1 = readFileSync(first.changed[0]!.orig);
    writeFileSync(join(t.srcDir, "hello.h"), "#define VALUE 7\n"); // a rebuilt kernel's header
    rmSync(t.workDir, { recursive: true });
    const second = await build(t);
    assert.notDeepEqual(readFileSync(second.changed[0]!.orig), orig1);
    assert.equal(
      readdirSync(t.cacheDir).length,
      1,
      "one entry per object: the old one is gone, no temporary",
    );
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() with a second patch that does not apply: PATCH_FAILED, the first one's change undone", async () => {
  const t = miniTree();
  try {
    const bad = join(t.root, "bad.patch");
    writeFileSync(
      bad,
      "--- a/hello.h\n+++ b/hello.h\n@@ -1 +1 @@\n-#define NOTHING LIKE THIS\n+#define VALUE 2\n",
    );
    await assert.rejects(build(t, { patches: [readPatch(t.patch), readPatch(bad)] }), {
      code: "PATCH_FAILED",
      location: { file: bad },
    });
    clean(t);
    assert.equal(readFileSync(join(t.srcDir, "hello.h"), "utf8"), "#define VALUE 1\n");
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() caches no original whose compile failed, and leaves no temporary", async () => {
  const t = miniTree();
  try {
    writeFileSync(join(t.srcDir, "hello.h"), "#error a header that does not compile\n");
    await assert.rejects(build(t), { code: "BUILD_FAILED" });
    assert.deepEqual(existsSync(t.cacheDir) ? readdirSync(t.cacheDir) : [], []);
    assert.deepEqual(readdirSync(join(t.workDir, "orig")), [], "no temporary in the work folder");
    clean(t);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() finds the objects of a source tree given through a symlink", async () => {
  const t = miniTree();
  try {
    symlinkSync(t.srcDir, join(t.root, "linux"));
    const built = await build(t, {
      tree: { srcDir: join(t.root, "linux"), buildDir: t.buildDir, cacheDir: t.cacheDir },
    });
    assert.equal(built.changed.length, 1);
    clean(t);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() works with spaces, quotes and $(...) in the cache and work paths, running nothing of them", async () => {
  const top = mkdtempSync(join(tmpdir(), "odd-"));
  const odd = join(top, "a b $(touch \"$KPATCH_TEST_MARK\") 'q'");
  mkdirSync(odd);
  const mark = join(top, "mark");
  process.env["KPATCH_TEST_MARK"] = mark;
  const cache = process.env["KPATCH_TS_CACHE"];
  process.env["KPATCH_TS_CACHE"] = join(odd, "cache");
  const t = miniTree();
  try {
    mkdirSync(join(odd, "work"));
    const built = await build(t, {
      tree: { srcDir: t.srcDir, buildDir: t.buildDir, cacheDir: join(odd, "cache", "objects") },
      workDir: join(odd, "work"),
    });
    assert.equal(built.changed.length, 1);
    assert.equal(existsSync(mark), false, "no command ran from a path");
  } finally {
    rmSync(t.root, { recursive: true, force: true });
    process.env["KPATCH_TS_CACHE"] = cache;
    rmSync(top, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() reports a compiler killed by Ctrl-C as INTERRUPTED and restores the tree", async () => {
  // A terminal's Ctrl-C reaches the whole process group: the compile of the patched source dies of SIGINT.
  const t = miniTree((src) => ` && if grep -q PATCHED ${src}/hello.c; then kill -INT $$; fi`);
  try {
    await assert.rejects(build(t), { code: "INTERRUPTED" });
    clean(t);
    assert.equal(existsSync(join(t.srcDir, LOCK_NAME)), false);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects() stopped through its AbortSignal in the patched build: INTERRUPTED, tree restored", async () => {
  const t = miniTree();
  const stop = new AbortController();
  const log = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (chunk.toString().includes("[patched build]")) stop.abort("SIGTERM");
      done();
    },
  });
  try {
    await assert.rejects(
      build(t, { signal: stop.signal, progress: new Progress({ stream: log, tty: false }) }),
      {
        code: "INTERRUPTED",
        message: /Stopped by SIGTERM/,
      },
    );
    clean(t);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

/** The cache's entries for hello.o (one folder per tree; the test trees put it at the top). */
const entriesOf = (t: Mini) => readdirSync(t.cacheDir).filter((e) => e.startsWith("hello.o."));

test("buildPatchedObjects() checks a cached original before use: truncated, or another valid object, it is compiled again", async () => {
  const t = miniTree();
  try {
    const first = await build(t);
    const orig = readFileSync(first.changed[0]!.orig);
    const patched = readFileSync(first.changed[0]!.patched);
    const [entry] = entriesOf(t);
    for (const damage of [orig.subarray(0, 100), patched]) {
      writeFileSync(join(t.cacheDir, entry!), damage);
      rmSync(t.workDir, { recursive: true });
      const notes: string[] = [];
      const log = new Writable({
        write(chunk: Buffer, _enc, done) {
          notes.push(chunk.toString());
          done();
        },
      });
      const again = await build(t, { progress: new Progress({ stream: log, tty: false }) });
      assert.equal(again.changed.length, 1, "the patched object differs from the original");
      assert.ok(readFileSync(again.changed[0]!.orig).equals(orig), "the original, not the damaged entry");
      assert.match(
        notes.join(""),
        /cached original .*hello\.o\.[0-9a-f]{32}\.[0-9a-f]{64}\.o is not what was written/,
      );
      assert.deepEqual(entriesOf(t), [entry], "one good entry again");
    }
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("buildPatchedObjects(): two runs sharing one objects folder, one pruning the other's entry mid-run, both succeed", async () => {
  // A waits in its patched build until B, another tree with the same cache folder, has compiled
  // (and pruned) hello.o under its own key.
  const a = miniTree(
    (src) => ` && if grep -q PATCHED ${src}/hello.c; then until [ -e ${src}/../go ]; do sleep 0.05; done; fi`,
  );
  const b = miniTree();
  try {
    const runA = build(a);
    const waitFor = async (ok: () => boolean) => {
      for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
    };
    await waitFor(() => readFileSync(join(a.srcDir, "hello.c"), "utf8").includes("PATCHED"));
    const cachedA = entriesOf(a);
    assert.equal(cachedA.length, 1, "A's original is cached");
    const runB = await build(b, { tree: { srcDir: b.srcDir, buildDir: b.buildDir, cacheDir: a.cacheDir } });
    assert.equal(runB.changed.length, 1);
    assert.equal(entriesOf(a).length, 1);
    assert.notDeepEqual(entriesOf(a), cachedA, "B's entry replaced A's (another key of the same object)");
    writeFileSync(join(a.root, "go"), "");
    const builtA = await runA;
    assert.equal(builtA.changed.length, 1);
    clean(a);
    clean(b);
  } finally {
    rmSync(a.root, { recursive: true, force: true });
    rmSync(b.root, { recursive: true, force: true });
  }
});
