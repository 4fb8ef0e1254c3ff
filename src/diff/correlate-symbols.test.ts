import assert from "node:assert/strict";
import { test } from "node:test";
import { baseName } from "./correlate-symbols.js";

test("baseName() drops the numbers GCC gives clones and static locals", () => {
  assert.equal(baseName("foo.isra.0"), "foo.isra");
  assert.equal(baseName("foo.constprop.12.isra.3"), "foo.constprop.isra");
  assert.equal(baseName("count.7"), "count");
  assert.equal(baseName("foo.part.0.cold"), "foo.part.cold");
  assert.equal(baseName("foo.cold"), "foo.cold");
  assert.equal(baseName("plain"), "plain");
});
