import assert from "node:assert/strict";
import test from "node:test";
import { badKernelReleaseReason, checkKernelRelease } from "./kernel-paths.js";

test("a kernel release looks like uname -r, and nothing that steps out of a directory passes", () => {
  for (const ok of ["6.12.57", "6.12.57+deb13-amd64", "6.1.0-56-amd64", "6.12.0-rc1+", "5.15.0-91-generic"]) {
    assert.equal(badKernelReleaseReason(ok), undefined, ok);
  }
  for (const bad of [
    "",
    "..",
    "../x",
    "6.12/../..",
    "/etc",
    ".hidden",
    "-k",
    "6.12..1",
    "a b",
    "x".repeat(65),
  ]) {
    assert.notEqual(badKernelReleaseReason(bad), undefined, JSON.stringify(bad));
  }
  assert.throws(() => checkKernelRelease("../x"), {
    code: "KPATCH_BAD_RELEASE",
    message: /^Cannot use '\.\.\/x' as a kernel release: a release starts with a letter or digit/,
  });
});
