/**
 * Every command line, given a user's mistake, answers in one line naming the thing, with exit
 * 2 for usage and 1 for the rest: never "internal error", never a stack trace, never a hang.
 * Runs the built commands on this machine; none of these cases gets as far as the kernel
 * (kpatch's state directory is a temporary one, $KPATCH_LIB_DIR).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { exec } from "../src/util/exec.js";
import { fakeModule } from "./helpers/fake-kernel.js";
import { livepatchObject } from "./helpers/patch-package-fixtures.js";

const CLI = join(import.meta.dirname, "..", "src", "cli");
const work = mkdtempSync(join(tmpdir(), "kpatch-cli-errors-"));
const lib = join(work, "lib");
after(() => rmSync(work, { recursive: true, force: true }));

// The things a user may name by mistake.
execFileSync("mkfifo", [join(work, "fifo.ko"), join(work, "fifo.patch")]);
mkdirSync(join(work, "adir.ko"));
writeFileSync(join(work, "empty.o"), "");
writeFileSync(join(work, "x.patch"), "--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-a\n+b\n");
writeFileSync(join(work, "ok.ko"), fakeModule({ vermagic: `${release()} SMP `, livepatch: "Y", name: "ok" }));
// An atomic-replace klp object kpatch package accepts (not loadable: for packaging only).
// Its kernel release is long (64 bytes, as a local version may make it): with a long -V, the .deb
// file name would pass the 255 bytes a file name may have.
livepatchObject(work, {}, { name: "replace", livepatch: "Y", vermagic: `6.12.117-${"l".repeat(55)} SMP ` });
// What `kpatch uninstall -k ../x victim` would delete: <lib>/../x/victim.ko.
mkdirSync(join(work, "x"));
writeFileSync(
  join(work, "x", "victim.ko"),
  fakeModule({ vermagic: "x SMP ", livepatch: "Y", name: "victim" }),
);

async function run(cli: string, args: string[]) {
  const r = await exec(process.execPath, [join(CLI, `${cli}.js`), ...args], {
    cwd: work,
    env: { ...process.env, KPATCH_LIB_DIR: lib, KPATCH_DEBUG: "" },
    timeoutMs: 20_000,
  });
  assert.equal(r.timedOut, false, `${cli} ${args.join(" ")} hung`);
  return r;
}

type Case = [cli: string, args: string[], exit: 1 | 2, message: RegExp];

const CASES: Case[] = [
  ["kpatch", ["list", "--bogus"], 2, /^kpatch: list: Unknown option '--bogus'$/],
  [
    "kpatch",
    ["load", "-t", "-1", "x.ko"],
    2,
    /^kpatch: load: Option '-t' argument is ambiguous\. Did you forget to specify the option argument for '-t'\?$/,
  ],
  [
    "kpatch",
    ["info", "/nonexistent/file.ko"],
    1,
    /Cannot read \/nonexistent\/file\.ko: no such file or directory/,
  ],
  ["kpatch", ["info", ".."], 1, /Cannot read \.\.: a directory, not a regular file/],
  ["kpatch", ["info", "adir.ko"], 1, /Cannot read adir\.ko: a directory, not a regular file/],
  ["kpatch", ["info", "fifo.ko"], 1, /Cannot read fifo\.ko: a FIFO, not a regular file/],
  ["kpatch", ["info", "a.b"], 2, /^kpatch: info: 'a\.b' is not a patch name/],
  [
    "kpatch",
    ["uninstall", "-k", "../x", "victim"],
    2,
    /^kpatch: uninstall: -k '\.\.\/x' is not a kernel release/,
  ],
  ["kpatch", ["install", "-k", "../x", "ok.ko"], 2, /^kpatch: install: -k '\.\.\/x' is not a kernel release/],
  [
    "kpatch",
    ["unblock", "-k", "a/../..", "ok"],
    2,
    /^kpatch: unblock: -k 'a\/\.\.\/\.\.' is not a kernel release/,
  ],
  ["kpatch", ["install", "fifo.ko"], 1, /Cannot read fifo\.ko: a FIFO, not a regular file/],
  ["kpatch-build", ["--no-such-option"], 2, /^kpatch-build: Unknown option '--no-such-option'$/],
  ["kpatch-build", ["/nonexistent.patch"], 1, /Cannot read \/nonexistent\.patch: no such file or directory/],
  ["kpatch-build", ["adir.ko"], 1, /Cannot read adir\.ko: a directory, not a regular file/],
  ["kpatch-build", ["fifo.patch"], 1, /Cannot read fifo\.patch: a FIFO, not a regular file/],
  [
    "kpatch-build",
    ["-o", "/nonexistent/dir", "x.patch"],
    1,
    /Cannot use \/nonexistent\/dir as the output directory/,
  ],
  [
    "kpatch-build",
    ["-s", "/nonexistent", "x.patch"],
    1,
    /Cannot use \/nonexistent as the kernel source tree/,
  ],
  ["kpatch-build", ["-j", "x", "x.patch"], 2, /^kpatch-build: bad --jobs 'x'$/],
  ["kpatch-build", ["diff-object", "--bogus"], 2, /^kpatch-build: diff-object: Unknown option '--bogus'$/],
  [
    "kpatch-build",
    ["diff-object", "/nonexistent/a.o", "/nonexistent/b.o", "-o", "out.o"],
    1,
    /Cannot read \/nonexistent\/a\.o: no such file or directory/,
  ],
  [
    "kpatch-build",
    ["diff-object", "adir.ko", "empty.o", "-o", "out.o"],
    1,
    /Cannot read adir\.ko: a directory/,
  ],
  ["kpatch-build", ["diff-object", "fifo.ko", "empty.o", "-o", "out.o"], 1, /Cannot read fifo\.ko: a FIFO/],
  [
    "kpatch-build",
    ["diff-object", "empty.o", "empty.o", "-o", "/nonexistent/x.o"],
    1,
    /Cannot use \/nonexistent as the directory for \/nonexistent\/x\.o: no such file or directory/,
  ],
  [
    "kpatch-build",
    ["diff-object", "empty.o", "empty.o", "-o", "out.o", "--symbols", "/nonexistent"],
    1,
    /Cannot read \/nonexistent: no such file or directory/,
  ],
  [
    "kpatch-build",
    ["diff-object", "empty.o", "empty.o", "-o", "out.o", "--json", "/nonexistent/r.json"],
    1,
    /Cannot use \/nonexistent as the directory for \/nonexistent\/r\.json/,
  ],
  [
    "kpatch-build",
    ["--kernel-release", "", "x.patch"],
    2,
    /^kpatch-build: --kernel-release needs a value, not an empty string$/,
  ],
  [
    "kpatch-build",
    ["-s", "", "x.patch"],
    2,
    /^kpatch-build: --sourcedir needs a value, not an empty string$/,
  ],
  [
    "kpatch-build",
    ["--kernel-release", "6.12/../x", "x.patch"],
    2,
    /^kpatch-build: --kernel-release '6\.12\/\.\.\/x' is not a kernel release: a release starts with/,
  ],
  [
    "kpatch",
    ["install", "-k", "", "ok.ko"],
    2,
    /^kpatch: install: --kernel-version needs a value, not an empty string$/,
  ],
  [
    "kpatch",
    ["package", "-V", `1.${"0".repeat(198)}`, "--maintainer", "J A <j@a.org>", "-o", "debs", "replace.ko"],
    1,
    /Cannot build kpatch-patch-\S+ 1\.0+: its \.deb file name would be 2\d\d bytes, over the 255 a file name may have/,
  ],
  ["kpatch-lab", ["setup", "--bogus"], 2, /^kpatch-lab: setup: Unknown option '--bogus'$/],
  ["kpatch-lab", ["setup", "extra"], 2, /^kpatch-lab: setup: unexpected argument 'extra'$/],
  [
    "kpatch-lab",
    ["setup", "-j", "0"],
    2,
    /^kpatch-lab: setup: --jobs needs a whole number above 0, not '0'$/,
  ],
  ["kpatch-lab", ["run", "--bogus", "--", "true"], 2, /^kpatch-lab: run: Unknown option '--bogus'$/],
  [
    "kpatch-lab",
    ["run", "--timeout", "abc", "--", "true"],
    2,
    /^kpatch-lab: run: --timeout needs a whole number/,
  ],
  ["kpatch-lab", ["run", "--file", "adir.ko", "--", "true"], 1, /Cannot read adir\.ko: a directory/],
  ["kpatch-lab", ["info", "--kernel", "5.0"], 2, /^kpatch-lab: unknown kernel series '5\.0'$/],
];

describe("a user's mistake on any command line: one line, exit 2 (usage) or 1, no stack", () => {
  for (const [cli, args, exit, message] of CASES) {
    it(`${cli} ${args.join(" ")}`, async () => {
      const r = await run(cli, args);
      const said = `${r.stdout}${r.stderr}`;
      assert.equal(r.code, exit, `exit ${r.code}:\n${said}`);
      assert.doesNotMatch(said, /internal error|^\s+at .*:\d+:\d+\)?$/m, "no internal error, no stack");
      const lines = r.stderr.trimEnd().split("\n");
      assert.match(lines[0]!, message);
      // Usage errors add the hint line; every other error is one line.
      if (exit === 2) assert.deepEqual(lines.slice(1), [`Try '${cli} --help' for more information.`]);
      else assert.equal(lines.length, 1, r.stderr);
    });
  }

  it("kpatch uninstall -k ../x deleted nothing outside the state directory", async () => {
    await run("kpatch", ["uninstall", "-k", "../x", "victim"]);
    assert.equal(existsSync(join(work, "x", "victim.ko")), true);
    assert.equal(existsSync(join(work, "ok.ko")), true);
  });
});

describe("kpatch list with a dangling .ko in the state directory", () => {
  it("lists it as broken and the others as usual, exit 0", async () => {
    const dir = join(lib, release());
    mkdirSync(dir, { recursive: true });
    symlinkSync(join(work, "vanished.ko"), join(dir, "dangling.ko"));
    writeFileSync(
      join(dir, "good.ko"),
      fakeModule({ vermagic: `${release()} SMP `, livepatch: "Y", name: "good" }),
    );
    const r = await run("kpatch", ["list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /Installed patch modules:\n {2}dangling \(.*\) .*dangling\.ko\n {4}BROKEN: Cannot read .*dangling\.ko: no such file or directory; it cannot load \('kpatch uninstall dangling' forgets it\)\n {2}good \(/,
    );
    const json = JSON.parse((await run("kpatch", ["list", "--json"])).stdout);
    assert.deepEqual(
      json.installed.map((p: { name: string; broken?: { code: string } }) => [p.name, p.broken?.code]),
      [
        ["dangling", "KPATCH_NO_FILE"],
        ["good", undefined],
      ],
    );
  });
});

describe("kpatch list with entries in the state directory that name no kernel release", () => {
  it("says each is skipped on stderr, lists the installed patches, exit 0", async () => {
    const dir = join(lib, release());
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "kept.ko"),
      fakeModule({ vermagic: `${release()} SMP `, livepatch: "Y", name: "kept" }),
    );
    mkdirSync(join(lib, "old\x1b[31mbackup"));
    writeFileSync(join(lib, "README"), "a file someone left\n");
    const r = await run("kpatch", ["list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Loaded patch modules:[\s\S]*Installed patch modules:[\s\S]* {2}kept \(/);
    assert.match(r.stderr, /^kpatch: skipped .*\/old\\x1b\[31mbackup: a release starts with a letter/m);
    assert.match(r.stderr, /^kpatch: skipped .*\/README: not a directory, not a kernel release's patches$/m);
    const json = JSON.parse((await run("kpatch", ["list", "--json"])).stdout);
    assert.ok(json.installed.some((p: { name: string }) => p.name === "kept"));
    assert.equal(json.skipped.length, 2);
  });
});
