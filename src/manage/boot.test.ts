import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fakeKernel, fakeModule } from "../kernel/testing.js";
import { bootDisabled, confirmBoot, loadInstalled } from "./boot.js";
import { blockCrashedPatches, markPending, pendingMarks, readBlocked, unblock } from "./crash-guard.js";
import { installPatch } from "./install.js";

const KVER = "6.12.57";

function libWith(...names: string[]): string {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  for (const n of names) {
    const f = join(root, `${n}.ko`);
    writeFileSync(f, fakeModule({ vermagic: `${KVER} SMP `, livepatch: "Y", name: n }));
    installPatch(f, { kernelRelease: KVER, root });
  }
  return root;
}

test("bootDisabled() reads kpatch.enable=0 as a whole word of the kernel command line", () => {
  assert.equal(bootDisabled("console=ttyS0 kpatch.enable=0 quiet\n"), true);
  assert.equal(bootDisabled("kpatch.enable=0"), true);
  assert.equal(bootDisabled("console=ttyS0 kpatch.enable=1"), false);
  assert.equal(bootDisabled("xkpatch.enable=0"), false);
  assert.equal(bootDisabled("kpatch.enable=00"), false);
});

test("loadInstalled() at boot loads nothing when the command line has kpatch.enable=0", async () => {
  const root = libWith("fix");
  const k = fakeKernel({ cmdline: "console=ttyS0 kpatch.enable=0" });
  const r = await loadInstalled({ kernelRelease: KVER, root, paths: k, boot: true });
  assert.match(r.skipped ?? "", /kpatch\.enable=0/);
  assert.deepEqual([r.loaded, r.failed, r.blocked], [[], [], []]);
  assert.deepEqual(pendingMarks(KVER, root), []);
});

test("the crash-loop guard blocks a patch whose loading boot never confirmed, until unblocked", () => {
  const root = libWith("fix", "other");
  markPending(KVER, "fix", { bootId: "boot-1", at: "2026-01-01T00:00:00Z" }, root);
  markPending(KVER, "other", { bootId: "boot-2", at: "2026-01-01T00:00:00Z" }, root);
  const blocked = blockCrashedPatches(KVER, "boot-2", new Date("2026-01-02T00:00:00Z"), root);
  assert.deepEqual(
    blocked.map((b) => b.name),
    ["fix"],
  );
  assert.match(readBlocked(KVER, "fix", root)?.reason ?? "", /boot id boot-1.*without a clean shutdown/);
  assert.deepEqual(
    pendingMarks(KVER, root).map((m) => m.name),
    ["other"],
  );
  assert.deepEqual(confirmBoot(KVER, root), ["other"]);
  assert.deepEqual(pendingMarks(KVER, root), []);
  assert.equal(unblock(KVER, "fix", root), true);
  assert.equal(readBlocked(KVER, "fix", root), undefined);
  assert.equal(unblock(KVER, "fix", root), false);
});

test("loadInstalled() at boot skips blocked and already loaded patches without loading anything", async () => {
  const root = libWith("crashed", "present");
  markPending(KVER, "crashed", { bootId: "an-earlier-boot", at: "t" }, root);
  const k = fakeKernel({ patches: [{ name: "present", objects: { vmlinux: ["f"] } }] });
  const r = await loadInstalled({ kernelRelease: KVER, root, paths: k, boot: true });
  assert.deepEqual(r.blockedNow, ["crashed"]);
  assert.deepEqual(
    r.blocked.map((b) => b.name),
    ["crashed"],
  );
  assert.deepEqual(r.present, ["present"]);
  assert.deepEqual([r.loaded, r.failed], [[], []]);
});

test("a marker that cannot be read still blocks (the guard errs on the safe side)", () => {
  const root = libWith("fix");
  markPending(KVER, "fix", { bootId: "x", at: "t" }, root);
  writeFileSync(join(root, KVER, ".boot", "fix.pending"), "{not json");
  assert.deepEqual(
    blockCrashedPatches(KVER, "now", new Date(), root).map((b) => b.name),
    ["fix"],
  );
});
