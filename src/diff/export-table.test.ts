import assert from "node:assert/strict";
import { test } from "node:test";
import { isDiffError } from "./diff-error.js";
import { ExportTable } from "./export-table.js";

const SYMVERS =
  "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x9abcdef0\tfoo_helper\tdrivers/foo/foo\tEXPORT_SYMBOL_GPL\tFOO\n";

test("ExportTable.reachable(): vmlinux exports for vmlinux, other modules' exports for a module", () => {
  const t = ExportTable.parse(SYMVERS);
  assert.equal(t.reachable("printk", "vmlinux"), true);
  assert.equal(t.reachable("foo_helper", "vmlinux"), false);
  assert.equal(t.reachable("foo_helper", "bar"), true);
  assert.equal(t.reachable("foo_helper", "foo"), false, "the target module's own exports go through klp");
  assert.equal(t.reachable("not_exported", "vmlinux"), false);
});

test("ExportTable.parse() rejects a line that is not Module.symvers", () => {
  assert.throws(
    () => ExportTable.parse("hello world\n"),
    (e: unknown) => isDiffError(e) && e.code === "DIFF_BAD_INPUT",
  );
});
