import assert from "node:assert/strict";
import test from "node:test";
import { GUEST_MODULES, guestModulePath, guestModules } from "./distro-modules.js";

test("guestModulePath() drops the compression suffix: the guest gets the module decompressed", () => {
  assert.equal(
    guestModulePath("6.12.117+deb12-amd64", "kernel/fs/9p/9p.ko.xz"),
    "6.12.117+deb12-amd64/kernel/fs/9p/9p.ko",
  );
  assert.equal(guestModulePath("6.1.0-57-amd64", "kernel/fs/9p/9p.ko"), "6.1.0-57-amd64/kernel/fs/9p/9p.ko");
});

test("guestModules() leaves out 9p only where the image has none (the cloud flavour)", () => {
  assert.deepEqual(
    guestModules(() => true),
    GUEST_MODULES,
  );
  assert.deepEqual(
    guestModules((m) => !m.startsWith("9p")),
    GUEST_MODULES.filter((m) => !m.startsWith("9p")),
  );
});
