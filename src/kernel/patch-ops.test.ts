import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fakeKernel, fakeModule } from "../../test/helpers/fake-kernel.js";
import { requireRoot } from "./kernel-paths.js";
import { readModuleFile } from "./modinfo.js";
import { checkPatchModule, loadPatch, unloadPatch } from "./patch-ops.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-ops-"));
function module(name: string, fields: Record<string, string>): string {
  const path = join(dir, name);
  writeFileSync(path, fakeModule(fields));
  return path;
}

test("checkPatchModule() refuses a module that is not a livepatch module", () => {
  const { info } = readModuleFile(module("kobject-example.ko", { vermagic: "6.12.57 SMP " }));
  assert.throws(() => checkPatchModule(info, "6.12.57"), {
    code: "KPATCH_NOT_LIVEPATCH",
    message: /Cannot use kobject_example: not a livepatch module/,
  });
});

test("checkPatchModule() refuses a module built for another kernel, naming both releases", () => {
  const { info } = readModuleFile(module("fix.ko", { vermagic: "6.12.99 SMP mod_unload ", livepatch: "Y" }));
  assert.throws(() => checkPatchModule(info, "6.12.57"), {
    code: "KPATCH_VERMAGIC",
    message: /built for kernel 6\.12\.99 .* not for 6\.12\.57/,
  });
  assert.doesNotThrow(() => checkPatchModule(info, "6.12.99"));
});

test("requireRoot() refuses a non-root user", (t) => {
  t.mock.method(process as { geteuid: () => number }, "geteuid", () => 1000);
  assert.throws(() => requireRoot("load fix.ko"), {
    code: "KPATCH_NOT_ROOT",
    message: /Cannot load fix\.ko: not root \(uid 1000\)/,
  });
});

test("loadPatch() and unloadPatch() never reach insmod/rmmod with a fake kernel tree", async () => {
  const k = fakeKernel({ patches: [{ name: "stale", objects: { vmlinux: ["f"] } }] });
  const vermagic = `${(await import("node:os")).release()} SMP `;
  const fix = module("fake-fix.ko", { vermagic, livepatch: "Y", name: "fake_fix" });
  const verify = () => assert.fail("the pre-load check runs after the fake-kernel refusal");
  await assert.rejects(loadPatch(fix, { paths: k, verify }), { code: "KPATCH_FAKE_KERNEL" });
  await assert.rejects(unloadPatch("stale", { paths: k, timeoutMs: 0 }), { code: "KPATCH_FAKE_KERNEL" });
});
