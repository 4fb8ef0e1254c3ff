/**
 * kpatch-build against the lab's source and build tree named the ways users name theirs: through
 * symlinks (/usr/src/linux -> linux-6.12), with a cache and a TMPDIR whose paths hold spaces,
 * quotes and `$(...)`, and with a patch whose hunk applies only with fuzz. Each build's files are
 * checked to be exactly as before, with nothing left beside them.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { fixturePatch, KPATCH_BUILD, lab } from "./helpers/kpatch-build-fixtures.js";
import { cleanTreeState } from "./helpers/tree-state.js";

const run = promisify(execFile);
const cli = KPATCH_BUILD;
const cmdline = fixturePatch("cmdline");
const out = mkdtempSync(join(tmpdir(), "kpatch-build-safety-"));
test.after(() => rmSync(out, { recursive: true, force: true }));

const treeArgs = (src = lab.srcDir, build = lab.buildDir) => [
  "-s",
  src,
  "-b",
  build,
  "-v",
  join(lab.buildDir, "vmlinux"),
];

test("kpatch-build finds the objects of a source and build tree given through symlinks", async () => {
  const links = join(out, "links");
  mkdirSync(links);
  symlinkSync(lab.srcDir, join(links, "linux"));
  symlinkSync(lab.buildDir, join(links, "linux-build"));
  const before = await cleanTreeState(lab.srcDir, cmdline);
  const r = await run("node", [
    cli,
    ...treeArgs(join(links, "linux"), join(links, "linux-build")),
    ...["-n", "livepatch-link", "-o", out, cmdline],
  ]);
  assert.match(r.stdout, /^vmlinux: cmdline_proc_show$/m);
  assert.ok(existsSync(join(out, "livepatch-link.ko")));
  assert.equal(await cleanTreeState(lab.srcDir, cmdline), before);
});

test("kpatch-build works with spaces, quotes and $(...) in KPATCH_TS_CACHE and TMPDIR, and runs none of it", async () => {
  const odd = join(out, "a b $(touch \"$KPATCH_TEST_MARK\") 'q'");
  mkdirSync(join(odd, "tmp"), { recursive: true });
  const mark = join(out, "mark");
  const env = {
    ...process.env,
    KPATCH_TS_CACHE: join(odd, "cache"),
    TMPDIR: join(odd, "tmp"),
    KPATCH_TEST_MARK: mark,
  };
  const r = await run("node", [cli, ...treeArgs(), "-n", "livepatch-odd", "-o", out, cmdline], { env });
  assert.match(r.stdout, /^vmlinux: cmdline_proc_show$/m);
  assert.ok(existsSync(join(out, "livepatch-odd.ko")));
  assert.equal(existsSync(mark), false, "no command ran from a path");
});

test("kpatch-build refuses a hunk that applies only with fuzz, and with --allow-fuzz warns and leaves no .orig", async () => {
  // cmdline.patch with its first context line changed: it applies only with fuzz.
  const text = readFileSync(cmdline, "utf8").replace(
    /^ static int cmdline_proc_show.*$/m,
    " static int something_else(void)",
  );
  assert.notEqual(text, readFileSync(cmdline, "utf8"), "the fixture has the expected context line");
  const fuzzy = join(out, "fuzzy.patch");
  writeFileSync(fuzzy, text);
  const before = await cleanTreeState(lab.srcDir, fuzzy);
  await assert.rejects(
    run("node", [cli, ...treeArgs(), "-o", out, fuzzy]),
    (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 1, e.stderr);
      assert.match(
        e.stderr ?? "",
        /fs\/proc\/cmdline\.c: hunk #1 of .*fuzzy\.patch applies at line \d+ with fuzz 1/,
      );
      assert.match(e.stderr ?? "", /use --allow-fuzz.*\[PATCH_INEXACT\]/s);
      return true;
    },
  );
  assert.equal(await cleanTreeState(lab.srcDir, fuzzy), before);
  const r = await run("node", [cli, ...treeArgs(), "--allow-fuzz", "-o", out, fuzzy]);
  assert.match(r.stdout, /^vmlinux: cmdline_proc_show$/m);
  assert.match(
    r.stderr,
    /WARNING: fs\/proc\/cmdline\.c: hunk #1 .* with fuzz 1: check that the live patch changes/,
  );
  assert.equal(await cleanTreeState(lab.srcDir, fuzzy), before, "no cmdline.c.orig, the file as before");
});
