/**
 * scripts/run-tests.mjs, npm test's runner, on test files written here: two at a time, each
 * file's output whole and in one piece, the summary's counts, exit 1 on a failed file and on a
 * killed one, 0 when all pass.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { exec } from "../src/util/exec.js";

const RUNNER = join(import.meta.dirname, "..", "..", "scripts", "run-tests.mjs");

/** A test file that prints `lines` numbered lines with pauses between them (to interleave if it could). */
const chatty = (name: string, lines: number, body = "") =>
  `import test from "node:test";
test("${name} prints", async () => {
  for (let i = 0; i < ${lines}; i++) { console.log("${name} line " + i); await new Promise((r) => setTimeout(r, 20)); }
  ${body}
});
test("${name} skips", { skip: "on purpose" }, () => {});
`;

async function runFiles(files: Record<string, string>, workers = "2") {
  const dir = mkdtempSync(join(tmpdir(), "run-tests-"));
  try {
    const paths = Object.entries(files).map(([name, text]) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    });
    return await exec("node", [RUNNER, ...paths], { env: { ...process.env, KPATCH_TEST_WORKERS: workers } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The lines of one file's block: from its ===== header to the next header or the summary. */
function block(stdout: string, file: string): string[] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => l.startsWith("# =====") && l.includes(file));
  assert.ok(start >= 0, `${file} has a block:\n${stdout}`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith("# ====="));
  return lines.slice(start, end);
}

test("two files at once: each file's output in one piece, the summary counts, exit 0", async () => {
  const r = await runFiles({ "a.test.mjs": chatty("a", 30), "b.test.mjs": chatty("b", 30) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const name of ["a", "b"]) {
    const mine = block(r.stdout, `${name}.test.mjs`);
    assert.match(mine[0]!, /: ok in [\d.]+ s =====$/);
    const printed = mine.filter((l) => / line \d+$/.test(l));
    assert.equal(printed.length, 30, mine.join("\n"));
    assert.ok(
      printed.every((l) => l.includes(`${name} line `)),
      "no line of the other file inside",
    );
  }
  // Both ran at once: the second started before the first ended.
  const lines = r.stdout.split("\n");
  const secondStart = lines.filter((l) => l.startsWith("# start "))[1]!;
  assert.ok(lines.indexOf(secondStart) < lines.findIndex((l) => l.startsWith("# =====")), r.stdout);
  assert.match(r.stdout, /^# files 2, failed or killed 0$/m);
  assert.match(r.stdout, /^# tests 4, passed 2, failed 0, cancelled 0, skipped 2, todo 0$/m);
});

test("a failed file and a killed file are named, and the run exits 1", async () => {
  const r = await runFiles({
    "pass.test.mjs": chatty("pass", 2),
    "fail.test.mjs": chatty("fail", 2, 'throw new Error("on purpose");'),
    "killed.test.mjs": chatty("killed", 2, 'process.kill(process.pid, "SIGKILL");'),
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(block(r.stdout, "fail.test.mjs")[0]!, /: FAILED \(exit 1\) in /);
  assert.match(block(r.stdout, "killed.test.mjs")[0]!, /: KILLED \(SIGKILL\) in /);
  assert.match(block(r.stdout, "pass.test.mjs")[0]!, /: ok in /);
  const named = /^# files 3, failed or killed 2: (.*)$/m.exec(r.stdout)?.[1] ?? "";
  assert.deepEqual(
    named
      .split(", ")
      .map((f) => f.replace(/.*\//, ""))
      .sort(),
    ["fail.test.mjs", "killed.test.mjs"],
  );
  assert.match(r.stdout, /^# tests 5, passed 1, failed 2, cancelled 0, skipped 2, todo 0$/m);
});

test("a worker count that is not a whole number is refused in one line, exit 2", async () => {
  const r = await runFiles({ "a.test.mjs": chatty("a", 1) }, "two");
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "run-tests: error: KPATCH_TEST_WORKERS must be a whole number >= 1, not 'two'\n");
  assert.equal(r.stdout, "");
});

test("a file that reports no test at all is a failure, not a pass", async () => {
  const r = await runFiles({ "empty.test.mjs": 'console.log("no test here");\n' });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(block(r.stdout, "empty.test.mjs")[0]!, /: FAILED \(no tests\) in /);
});

test("a file whose one suite is skipped, saying why, is a skip, not a failure", async () => {
  const r = await runFiles({
    "skipped-suite.test.mjs": `import { describe, test } from "node:test";
describe("a suite", { skip: "its trees are not prepared" }, () => { test("never runs", () => {}); });
`,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(block(r.stdout, "skipped-suite.test.mjs")[0]!, /: ok in /);
  assert.match(r.stdout, /# SKIP its trees are not prepared/);
  assert.match(r.stdout, /skipped-suite\.test\.mjs {2}\(0 passed, 0 failed, 1 skipped\)/);
});
