import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { kbuildIndex } from "./kbuild-index.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-kbuild-index-"));
after(() => rmSync(dir, { recursive: true, force: true }));
process.env["KPATCH_TS_CACHE"] = join(dir, "cache");

function record(obj: string, source: string, deps: string[]): string {
  return [
    `savedcmd_${obj} := gcc -D__KERNEL__ -c -o ${obj} ${source}`,
    "",
    `source_${obj} := ${source}`,
    "",
    `deps_${obj} := \\`,
    ...deps.map((d) => `  ${d} \\`),
    "",
    `${obj}: $(deps_${obj})`,
  ].join("\n");
}

test("kbuildIndex() reads the records once, answers from the cache, and rereads when a record or a directory changes", () => {
  const tree = join(dir, "build");
  mkdirSync(join(tree, "fs", "proc"), { recursive: true });
  mkdirSync(join(tree, "kernel"), { recursive: true });
  writeFileSync(
    join(tree, "fs", "proc", ".cmdline.o.cmd"),
    record("fs/proc/cmdline.o", "/src/fs/proc/cmdline.c", [
      "/src/include/linux/fs.h",
      "include/generated/autoconf.h",
    ]),
  );
  writeFileSync(
    join(tree, "kernel", ".exit.o.cmd"),
    record("kernel/exit.o", "/src/kernel/exit.c", ["/src/include/linux/sched.h"]),
  );
  const first = kbuildIndex(tree);
  assert.equal(first.fresh, true);
  assert.deepEqual(
    first.dependingOn(["/src/include/linux/fs.h"]).map((o) => o.path),
    ["fs/proc/cmdline.o"],
  );
  // A generated header is recorded relative to the build tree and found by its absolute path.
  assert.deepEqual(
    first.dependingOn([join(tree, "include/generated/autoconf.h")]).map((o) => o.path),
    ["fs/proc/cmdline.o"],
  );
  assert.deepEqual(
    first.dependingOn(["/src/kernel/exit.c"]).map((o) => o.path),
    ["kernel/exit.o"],
  );
  assert.deepEqual(first.dependingOn(["/src/include/linux/mm.h"]), []);

  const second = kbuildIndex(tree);
  assert.equal(second.fresh, false);
  assert.deepEqual(second.objects, first.objects);

  // A file that is no record (a source a patch rewrote in an in-tree build) changes the
  // directory, not what the index read.
  writeFileSync(join(tree, "kernel", "exit.c"), "int x;\n");
  utimesSync(join(tree, "kernel"), new Date(), new Date(Date.now() + 2000));
  assert.equal(kbuildIndex(tree).fresh, false);

  // kbuild rewrote a record (the object now includes another header): read again.
  const exitCmd = join(tree, "kernel", ".exit.o.cmd");
  writeFileSync(exitCmd, record("kernel/exit.o", "/src/kernel/exit.c", ["/src/include/linux/mm.h"]));
  utimesSync(exitCmd, new Date(), new Date(Date.now() + 5000));
  const third = kbuildIndex(tree);
  assert.equal(third.fresh, true);
  assert.deepEqual(
    third.dependingOn(["/src/include/linux/mm.h"]).map((o) => o.path),
    ["kernel/exit.o"],
  );
  assert.deepEqual(third.dependingOn(["/src/include/linux/sched.h"]), []);

  // A new record in a directory: the directory's mtime changes, the object is found.
  writeFileSync(join(tree, "kernel", ".fork.o.cmd"), record("kernel/fork.o", "/src/kernel/fork.c", []));
  utimesSync(join(tree, "kernel"), new Date(), new Date(Date.now() + 10000));
  const fourth = kbuildIndex(tree);
  assert.equal(fourth.fresh, true);
  assert.deepEqual(
    fourth.dependingOn(["/src/kernel/fork.c"]).map((o) => o.path),
    ["kernel/fork.o"],
  );
});
