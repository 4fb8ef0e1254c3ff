/**
 * kpatch-build for a kernel tree given on the command line (-s, -b, -c, -v), as a user with
 * their own kernel runs it: here the lab's source and build tree, named explicitly. The module
 * patches the running lab kernel. And the checks on such a tree, each with its error.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { runGuest } from "../src/lab/guest.js";
import { waitTransition } from "../src/lab/smoke.js";
import { fixturePatch, KPATCH_BUILD, lab } from "./helpers/kpatch-build-fixtures.js";

const run = promisify(execFile);
const cli = KPATCH_BUILD;
const patch = fixturePatch("cmdline");
const out = mkdtempSync(join(tmpdir(), "kpatch-build-tree-"));
test.after(() => rmSync(out, { recursive: true, force: true }));

test("kpatch-build -s SRC -b BUILD -c CONFIG -v VMLINUX builds a module that patches that kernel", async () => {
  const r = await run("node", [
    cli,
    ...["-s", lab.srcDir, "-b", lab.buildDir, "-c", join(lab.buildDir, ".config")],
    ...["-v", join(lab.buildDir, "vmlinux"), "-n", "livepatch-tree", "-o", out, patch],
  ]);
  assert.match(r.stdout, /^vmlinux: cmdline_proc_show$/m);
  const g = await runGuest({
    lab,
    files: [join(out, "livepatch-tree.ko")],
    commands: ["insmod livepatch-tree.ko", waitTransition("livepatch_tree"), "cat /proc/cmdline"],
  });
  assert.match(g.commands[2]!.output, / kpatch-ts=live\n$/);
});

async function fails(args: string[], code: number, message: RegExp): Promise<void> {
  await assert.rejects(
    run("node", [cli, ...args, "-o", out, patch]),
    (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, code, e.stderr);
      assert.match(e.stderr ?? "", message);
      return true;
    },
  );
}

test("kpatch-build refuses a tree it cannot use, saying why", async () => {
  await fails(["-s", "/nonexistent"], 1, /no such file or directory \[TREE_NOT_FOUND\]/);
  await fails(["-s", out], 1, /has no Makefile \[TREE_NOT_FOUND\]/);
  await fails(
    ["-s", lab.srcDir, "-b", out],
    1,
    /needs the build tree that built the running kernel \[TREE_NOT_BUILT\]/,
  );
  const other = join(out, "other.config");
  writeFileSync(other, "CONFIG_LIVEPATCH=y\n");
  await fails(
    ["-s", lab.srcDir, "-b", lab.buildDir, "-c", other],
    1,
    /differs from .*\.config.*\[TREE_CONFIG_MISMATCH\]/,
  );
  await fails(["-c", other], 2, /-b\/-c\/-v describe a tree given with -s/);
});
