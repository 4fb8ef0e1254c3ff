import assert from "node:assert/strict";
import test from "node:test";
import { DiffError } from "../diff/diff-error.js";
import { ElfError } from "../elf/elf-error.js";
import { KpatchError } from "../util/errors.js";
import { EXIT, exitStatus, UsageError } from "./main.js";

test("exitStatus() is the one mapping from errors to exit statuses", () => {
  assert.equal(exitStatus(new UsageError("no patch given")), EXIT.usage);
  assert.equal(exitStatus(new DiffError("DIFF_DATA_CHANGED", "x")), 2, "a refusal");
  assert.equal(exitStatus(new DiffError("DIFF_INIT_CHANGED", "x")), 2, "a refusal");
  assert.equal(exitStatus(new DiffError("DIFF_BAD_INPUT", "x")), 1, "bad input is no refusal");
  assert.equal(exitStatus(new DiffError("DIFF_SYMBOL_NOT_IN_TARGET", "x")), 1, "a missing fact");
  assert.equal(exitStatus(new KpatchError("NO_CHANGES", "x")), 3);
  assert.equal(exitStatus(new KpatchError("KPATCH_TRANSITION_STALLED", "x")), 3);
  assert.equal(exitStatus(new KpatchError("INTERRUPTED", "x")), 130);
  assert.equal(exitStatus(new KpatchError("RUNPRE_MISMATCH", "x")), 4);
  assert.equal(exitStatus(new KpatchError("BUILD_FAILED", "x")), 1);
  assert.equal(exitStatus(new ElfError("ELF_TRUNCATED", "x")), 1);
  assert.equal(exitStatus(new TypeError("a bug")), 1);
});
