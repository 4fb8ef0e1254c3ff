import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { fakeKernel } from "../../test/helpers/fake-kernel.js";
import { requireLivepatch } from "./kernel-paths.js";
import { findPatch, listPatches, patchInTransition, setPatchEnabled } from "./livepatch-sysfs.js";

test("findPatch() reads enabled, transition, objects and function,sympos directories", () => {
  const k = fakeKernel({
    patches: [
      { name: "fix", objects: { vmlinux: ["cmdline_proc_show", "dup_fn,2"], ext4: ["ext4_fill_super"] } },
      { name: "other", enabled: false, transition: true, objects: {} },
    ],
  });
  const p = findPatch("fix", k)!;
  assert.equal(p.enabled, true);
  assert.equal(p.transition, false);
  assert.equal(p.replace, undefined);
  assert.deepEqual(
    p.objects.map((o) => [o.name, o.patched, o.functions]),
    [
      ["ext4", true, [{ name: "ext4_fill_super", sympos: 0 }]],
      [
        "vmlinux",
        true,
        [
          { name: "cmdline_proc_show", sympos: 0 },
          { name: "dup_fn", sympos: 2 },
        ],
      ],
    ],
  );
  assert.equal(findPatch("absent", k), undefined);
  assert.deepEqual(
    listPatches(k).map((x) => x.name),
    ["fix", "other"],
  );
  assert.equal(patchInTransition(k)?.name, "other");
});

test("setPatchEnabled() writes the enabled attribute", () => {
  const k = fakeKernel({ patches: [{ name: "fix", objects: {} }] });
  setPatchEnabled("fix", false, k);
  assert.equal(readFileSync(join(k.livepatch, "fix", "enabled"), "utf8"), "0");
  assert.throws(() => setPatchEnabled("absent", true, k), { code: "KPATCH_SYSFS_WRITE" });
});

test("requireLivepatch() refuses a kernel without /sys/kernel/livepatch", () => {
  const k = fakeKernel({ livepatch: false });
  assert.throws(() => requireLivepatch("load x.ko", k), {
    code: "KPATCH_NO_LIVEPATCH",
    message: /Cannot load x\.ko: the running kernel .* has no livepatch support .*CONFIG_LIVEPATCH/,
  });
  assert.doesNotThrow(() => requireLivepatch("load x.ko", fakeKernel()));
});

test("findPatch() and setPatchEnabled() refuse a name that is no module name: '..' is not a patch", () => {
  const k = fakeKernel({ patches: [{ name: "fix", objects: {} }] });
  // /sys/kernel/livepatch/.. is /sys/kernel: a directory, read as a patch before the check.
  assert.throws(() => findPatch("..", k), { code: "KPATCH_BAD_NAME" });
  assert.throws(() => findPatch("fix/../fix", k), { code: "KPATCH_BAD_NAME" });
  assert.throws(() => setPatchEnabled("../fix", false, k), { code: "KPATCH_BAD_NAME" });
  assert.equal(readFileSync(join(k.livepatch, "fix", "enabled"), "utf8").trim(), "1");
  assert.equal(findPatch("fix", k)?.name, "fix");
});
