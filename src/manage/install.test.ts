import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fakeModule } from "../kernel/testing.js";
import { block } from "./crash-guard.js";
import {
  allInstalledPatches,
  findInstalled,
  installedKernels,
  installPatch,
  uninstallPatch,
} from "./install.js";

const src = mkdtempSync(join(tmpdir(), "kpatch-install-src-"));
function module(file: string, fields: Record<string, string>): string {
  const path = join(src, file);
  writeFileSync(path, fakeModule(fields));
  return path;
}

test("installPatch() keeps the module under <root>/<kver>/ and lists it per kernel", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  const fix = module("livepatch-fix.ko", { vermagic: "6.12.57 SMP ", livepatch: "Y", name: "livepatch_fix" });
  const p = installPatch(fix, { kernelRelease: "6.12.57", root });
  assert.equal(p.file, join(root, "6.12.57", "livepatch-fix.ko"));
  assert.equal(p.name, "livepatch_fix");
  assert.deepEqual(installedKernels(root), ["6.12.57"]);
  assert.equal(findInstalled("livepatch-fix", "6.12.57", root)?.file, p.file);
  assert.equal(findInstalled("livepatch_fix", "6.12.57", root)?.file, p.file);
  assert.equal(findInstalled("livepatch_fix", "6.1.0", root), undefined);
});

test("installPatch() refuses what loading would refuse: another kernel's module, a plain module", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  const other = module("other.ko", { vermagic: "6.1.0 SMP ", livepatch: "Y" });
  assert.throws(() => installPatch(other, { kernelRelease: "6.12.57", root }), { code: "KPATCH_VERMAGIC" });
  const plain = module("plain.ko", { vermagic: "6.12.57 SMP " });
  assert.throws(() => installPatch(plain, { kernelRelease: "6.12.57", root }), {
    code: "KPATCH_NOT_LIVEPATCH",
  });
  assert.deepEqual(allInstalledPatches(root), []);
});

test("installPatch() replaces an older file of the same patch; uninstallPatch() removes it and its guard state", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  const v1 = module("fix-v1.ko", { vermagic: "6.12.57 SMP ", livepatch: "Y", name: "fix" });
  const v2 = module("fix-v2.ko", { vermagic: "6.12.57 SMP ", livepatch: "Y", name: "fix" });
  installPatch(v1, { kernelRelease: "6.12.57", root });
  installPatch(v2, { kernelRelease: "6.12.57", root });
  assert.deepEqual(
    allInstalledPatches(root).map((p) => [p.name, p.file]),
    [["fix", join(root, "6.12.57", "fix-v2.ko")]],
  );
  block("6.12.57", "fix", { bootId: "b", at: "t", since: "s", reason: "r" }, root);
  assert.equal(allInstalledPatches(root)[0]?.blocked?.reason, "r");
  uninstallPatch("fix", { kernelRelease: "6.12.57", root });
  assert.deepEqual(allInstalledPatches(root), []);
  assert.equal(existsSync(join(root, "6.12.57", ".boot", "fix.blocked")), false);
  assert.throws(() => uninstallPatch("fix", { kernelRelease: "6.12.57", root }), {
    code: "KPATCH_NOT_INSTALLED",
  });
});
