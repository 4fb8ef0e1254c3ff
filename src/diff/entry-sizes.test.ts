import assert from "node:assert/strict";
import { test } from "node:test";
import { isDiffError } from "./diff-error.js";
import { entrySizesFromEnv, parseEntrySizes } from "./entry-sizes.js";

test("parseEntrySizes() reads NAME=BYTES lists", () => {
  assert.deepEqual(parseEntrySizes("bug=12,ex=12, alt=14,jump=16"), { bug: 12, ex: 12, alt: 14, jump: 16 });
});

test("parseEntrySizes() rejects unknown names and non-numbers", () => {
  assert.throws(
    () => parseEntrySizes("bugs=12"),
    (e: unknown) => isDiffError(e) && e.code === "DIFF_BAD_INPUT",
  );
  assert.throws(
    () => parseEntrySizes("bug=twelve"),
    (e: unknown) => isDiffError(e) && e.code === "DIFF_BAD_INPUT",
  );
});

test("entrySizesFromEnv() honours kpatch's *_STRUCT_SIZE variables", () => {
  assert.deepEqual(entrySizesFromEnv({ BUG_STRUCT_SIZE: "12", ORC_STRUCT_SIZE: "6", OTHER: "1" }), {
    bug: 12,
    orc: 6,
  });
});
