import assert from "node:assert/strict";
import test from "node:test";
import { escapeControl, printable } from "./printable.js";

test("escapeControl() writes C0, DEL, C1 and line separators as escapes, other text as it is", () => {
  assert.equal(
    escapeControl("a\nb\tc\r\x1b[2J\x00\x7f\x9b\u2028"),
    "a\\nb\\tc\\r\\x1b[2J\\x00\\x7f\\x9b\\u2028",
  );
  assert.equal(escapeControl("GPL v2 — ü 日本 \\n"), "GPL v2 — ü 日本 \\n");
});

test("printable() escapes quotes too and cuts a long name", () => {
  assert.equal(printable('a"b\n'), 'a\\"b\\n');
  assert.equal(printable("x".repeat(100)), `${"x".repeat(77)}...`);
});
