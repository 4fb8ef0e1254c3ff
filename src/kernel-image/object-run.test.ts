import assert from "node:assert/strict";
import test from "node:test";
import { KernelSymbols } from "./kernel-symbols.js";
import { findInObjectRun } from "./object-run.js";

/** Two objects with a `helper` each, and `b.c`'s clone among other duplicates. */
const MAP = `
ffffffff81000000 T a_first
ffffffff81000010 t helper
ffffffff81000020 t a_local
ffffffff81000030 T b_first
ffffffff81000040 t dup
ffffffff81000050 t helper
ffffffff81000060 T b_last
ffffffff81000070 T c_only
ffffffff81000080 t helper
ffffffff81000090 t dup
ffffffff82000000 d b_data
`;

const kallsyms = KernelSymbols.fromSystemMap(MAP);
const helpers = kallsyms.named("helper");

test("findInObjectRun() picks the copy between the object's own names, skipping other duplicates", () => {
  const { pick } = findInObjectRun(kallsyms, helpers, new Set(["b_first", "b_last", "helper"]));
  assert.equal(pick?.address, 0xffffffff81000050n);
});

test("findInObjectRun() settles nothing when the copy only touches the object's run (its edge)", () => {
  // c.c's helper follows c_only, but nothing of c.c comes after it: it could be the next object's.
  assert.equal(findInObjectRun(kallsyms, helpers, new Set(["c_only"])).pick, undefined);
});

test("findInObjectRun() settles nothing when another copy touches the run too", () => {
  const { pick, evidence } = findInObjectRun(kallsyms, helpers, new Set(["a_first", "a_local", "b_first"]));
  assert.equal(pick, undefined);
  assert.equal(evidence.filter((e) => e.touches).length, 2);
});

test("findInObjectRun() never crosses into another kind of symbol (text into data)", () => {
  const { evidence } = findInObjectRun(kallsyms, helpers, new Set(["b_data"]));
  assert.ok(evidence.every((e) => e.above !== "b_data"));
});
