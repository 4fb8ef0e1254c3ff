import assert from "node:assert/strict";
import test from "node:test";
import {
  checkModuleName,
  isModuleName,
  MODULE_NAME_MAX,
  moduleNameOf,
  normalizeModuleName,
} from "./module-name.js";

test("moduleNameOf() maps file names and paths to kernel module names", () => {
  assert.equal(moduleNameOf("/x/livepatch-sample.ko"), "livepatch_sample");
  assert.equal(moduleNameOf("livepatch_sample"), "livepatch_sample");
  assert.equal(moduleNameOf("fix.ko.xz"), "fix");
  assert.equal(moduleNameOf("drivers/net/foo-bar"), "foo_bar");
  assert.equal(normalizeModuleName("a-b-c"), "a_b_c");
});

test("isModuleName() accepts what kbuild names a module and nothing that could be a path", () => {
  for (const ok of ["livepatch_fix", "livepatch-fix", "ext4", "x".repeat(MODULE_NAME_MAX)]) {
    assert.equal(isModuleName(ok), true, ok);
  }
  for (const bad of [
    "",
    "..",
    ".",
    "../../../x",
    "a/b",
    "a.b",
    "a b",
    "x\n",
    "x".repeat(MODULE_NAME_MAX + 1),
  ]) {
    assert.equal(isModuleName(bad), false, JSON.stringify(bad));
  }
});

test("checkModuleName() normalises a good name and refuses a bad one in one line", () => {
  assert.equal(checkModuleName("livepatch-fix", "the patch name"), "livepatch_fix");
  assert.throws(() => checkModuleName("../../../x", "the patch name"), {
    code: "KPATCH_BAD_NAME",
    message:
      /^Cannot use the patch name '\.\.\/\.\.\/\.\.\/x': a module name has only letters, digits, '_' and '-'$/,
  });
  assert.throws(() => checkModuleName("a\nb", "the patch name"), { message: /'a\\nb'/ });
});
