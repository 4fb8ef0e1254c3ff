import assert from "node:assert/strict";
import test from "node:test";
import { guestModulePath } from "./distro-modules.js";

test("guestModulePath() drops the compression suffix: the guest gets the module decompressed", () => {
  assert.equal(
    guestModulePath("6.12.117+deb12-amd64", "kernel/fs/9p/9p.ko.xz"),
    "6.12.117+deb12-amd64/kernel/fs/9p/9p.ko",
  );
  assert.equal(guestModulePath("6.1.0-57-amd64", "kernel/fs/9p/9p.ko"), "6.1.0-57-amd64/kernel/fs/9p/9p.ko");
});
