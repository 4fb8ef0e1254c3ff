import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { after } from "node:test";
import { probeShellArgs } from "./kbuild-probes.js";

const root = mkdtempSync(join(tmpdir(), "kpatch-kbuild-probes-"));
after(() => rmSync(root, { recursive: true, force: true }));
process.env["KPATCH_TS_CACHE"] = join(root, "cache");

/** A command shaped as kbuild's try-run expands it (scripts/Makefile.compiler), counting its runs in `log`. */
function tryRun(scratch: string, log: string, question: string): string {
  return `set -e; TMP=${scratch}/.tmp_$$/tmp; trap "rm -rf ${scratch}/.tmp_$$" EXIT; mkdir -p ${scratch}/.tmp_$$; if ( echo run >> ${log}; ${question} ) >/dev/null 2>&1; then echo "-fyes"; else echo "-fno"; fi`;
}

function runShell(shell: string, command: string): { out: string; code: number | null } {
  const r = spawnSync(shell, ["-c", command], { cwd: root, encoding: "utf8" });
  return { out: r.stdout, code: r.status };
}

const debian = existsSync("/var/lib/dpkg/status") && existsSync("/etc/debian_version");

test("make's SHELL answers a try-run it has seen without running it, from any M= directory", {
  skip: debian ? false : "not a Debian system: the script keeps nothing without /var/lib/dpkg/status",
}, () => {
  const [arg] = probeShellArgs();
  assert.ok(arg?.startsWith("SHELL="));
  const shell = arg!.slice("SHELL=".length);
  const log = join(root, "runs.log");
  writeFileSync(log, "");
  const runs = () => readFileSync(log, "utf8").split("\n").filter(Boolean).length;

  assert.deepEqual(runShell(shell, tryRun(join(root, "m1"), log, "true")), { out: "-fyes\n", code: 0 });
  assert.deepEqual(runShell(shell, tryRun(join(root, "m1"), log, "false")), { out: "-fno\n", code: 0 });
  assert.equal(runs(), 2);
  // The same questions from another module's directory: answered, not run again.
  assert.deepEqual(runShell(shell, tryRun(join(root, "m2"), log, "true")), { out: "-fyes\n", code: 0 });
  assert.deepEqual(runShell(shell, tryRun(join(root, "m2"), log, "false")), { out: "-fno\n", code: 0 });
  assert.equal(runs(), 2);
  assert.equal(readdirSync(join(root, "cache", "kbuild-probes", "answers")).length, 2);
  // A new question is run.
  assert.deepEqual(runShell(shell, tryRun(join(root, "m2"), log, "test 1 = 1")), { out: "-fyes\n", code: 0 });
  assert.equal(runs(), 3);
});

test("every other command (kbuild's recipes) runs in /bin/sh unchanged, its status kept, nothing kept", () => {
  const [arg] = probeShellArgs();
  const shell = arg!.slice("SHELL=".length);
  assert.deepEqual(runShell(shell, "echo one; echo two >&2; exit 3"), { out: "one\n", code: 3 });
  assert.deepEqual(runShell(shell, 'set -e; TMP=x; echo "not a try-run"'), {
    out: "not a try-run\n",
    code: 0,
  });
  const answers = join(root, "cache", "kbuild-probes", "answers");
  const kept = existsSync(answers) ? readdirSync(answers).length : 0;
  assert.deepEqual(runShell(shell, "echo again; exit 3"), { out: "again\n", code: 3 });
  assert.equal(existsSync(answers) ? readdirSync(answers).length : 0, kept);
});

test("a failing try-run wrapper (kbuild's own set -e) keeps no answer and fails as it would", {
  skip: debian ? false : "not a Debian system: the script keeps nothing without /var/lib/dpkg/status",
}, () => {
  const [arg] = probeShellArgs();
  const shell = arg!.slice("SHELL=".length);
  // mkdir under a file fails: set -e ends the command before any echo.
  const blocker = join(root, "blocker");
  writeFileSync(blocker, "");
  const before = readdirSync(join(root, "cache", "kbuild-probes", "answers")).length;
  const r = runShell(shell, tryRun(blocker, join(root, "other.log"), "true"));
  assert.notEqual(r.code, 0);
  assert.equal(r.out, "");
  assert.equal(readdirSync(join(root, "cache", "kbuild-probes", "answers")).length, before);
});
