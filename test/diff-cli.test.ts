/**
 * `kpatch-build diff-object` exit codes and outputs: 0 changes emitted (OUT.o and the JSON
 * report), 3 no change (no OUT.o), 2 refused (the reason, DIFF_* code), 1 other errors.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readElf } from "../src/elf/index.js";
import { exec } from "../src/util/exec.js";
import { compilePlainCase, listCases } from "./fixtures/diff/harness.js";

const work = mkdtempSync(join(tmpdir(), "kpatch-diff-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));
const wrapper = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "diff", "run-diff-object.js");
const cases = new Map(listCases().map((c) => [c.name, c]));

async function run(name: string, extra: string[] = []) {
  const objs = await compilePlainCase(cases.get(name)!, work);
  const out = join(work, `${name}.out.o`);
  const json = join(work, `${name}.json`);
  const r = await exec(process.execPath, [
    wrapper,
    objs.orig,
    objs.patched,
    "-o",
    out,
    "--json",
    json,
    ...extra,
  ]);
  return { ...r, out, json };
}

test("diff-object exits 0 and writes OUT.o and the JSON report for a change", async () => {
  const r = await run("static-callee-reference");
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(r.json, "utf8"));
  assert.equal(report.status, "changed");
  assert.equal(report.changed[0].name, "run");
  assert.equal(report.changed[0].sympos, 0);
  assert.ok(report.changed[0].why.instruction.length > 0);
  const out = readElf(readFileSync(r.out), r.out);
  assert.ok(out.findSymbol("run"));
  assert.ok(out.findSymbol(".klp.sym.vmlinux.helper,0")?.isUndefined);
  assert.match(r.stdout, /changed function: run/);
});

test("diff-object exits 3 and writes no object when nothing changed", async () => {
  const r = await run("no-code-change");
  assert.equal(r.code, 3, r.stderr);
  assert.equal(existsSync(r.out), false);
  assert.equal(JSON.parse(readFileSync(r.json, "utf8")).status, "unchanged");
});

test("diff-object exits 2 with the reason when the change cannot be applied live", async () => {
  const r = await run("data-changed");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /limit.*DIFF_DATA_CHANGED/);
  assert.equal(existsSync(r.out), false);
  assert.equal(JSON.parse(readFileSync(r.json, "utf8")).error.code, "DIFF_DATA_CHANGED");
});

test("diff-object exits 1 on a bad option value", async () => {
  const r = await run("changed-function", ["--entry-sizes", "nonsense=3"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /DIFF_BAD_INPUT/);
});

test("diff-object lists callbacks in the JSON report and exits 2 on two callbacks of one kind", async () => {
  const ok = await run("callbacks");
  assert.equal(ok.code, 0, ok.stderr);
  const report = JSON.parse(readFileSync(ok.json, "utf8"));
  assert.deepEqual(
    report.callbacks.map((c: { kind: string; name: string }) => `${c.kind}:${c.name}`).sort(),
    [
      "post_patch:on_post_patch",
      "post_unpatch:existing_cleanup",
      "pre_patch:on_pre_patch",
      "pre_unpatch:on_pre_unpatch",
    ],
  );
  assert.match(ok.stdout, /pre_patch callback: on_pre_patch/);
  const dup = await run("callbacks-duplicate");
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /\.kpatch_ts\.callbacks\.pre_patch.*DIFF_BAD_DIRECTIVE/);
  assert.equal(existsSync(dup.out), false);
});
