import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fakeKernel, fakeModule } from "../../test/helpers/fake-kernel.js";
import type { LoadOptions } from "../kernel/patch-ops.js";
import { verifyBeforeLoad } from "../run-pre/live-check.js";
import { exec } from "../util/exec.js";
import { bootDisabled, confirmBoot, enableBootService, loadInstalled } from "./boot.js";
import { blockCrashedPatches, markPending, pendingMarks, readBlocked, unblock } from "./crash-guard.js";
import { installPatch } from "./install.js";

const KVER = "6.12.57";
/** kpatch's own pre-load check (never reached here: fake kernels refuse insmod before it). */
const verify: LoadOptions["verify"] = (elf, paths) => verifyBeforeLoad(elf, paths.proc);

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
  const r = await loadInstalled({ kernelRelease: KVER, root, paths: k, boot: true, verify });
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
  assert.deepEqual(confirmBoot(KVER, { root, paths: fakeKernel({ bootId: "boot-2" }) }), {
    confirmed: ["other"],
    earlier: [],
  });
  assert.deepEqual(pendingMarks(KVER, root), []);
  assert.equal(unblock(KVER, "fix", root), true);
  assert.equal(readBlocked(KVER, "fix", root), undefined);
  assert.equal(unblock(KVER, "fix", root), false);
});

test("loadInstalled() at boot skips blocked and already loaded patches without loading anything", async () => {
  const root = libWith("crashed", "present");
  markPending(KVER, "crashed", { bootId: "an-earlier-boot", at: "t" }, root);
  const k = fakeKernel({ patches: [{ name: "present", objects: { vmlinux: ["f"] } }] });
  const r = await loadInstalled({ kernelRelease: KVER, root, paths: k, boot: true, verify });
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

test("a boot with kpatch.enable=0 that confirms keeps the markers of the boot that crashed: the next boot blocks", async () => {
  const root = libWith("fix");
  // The boot that loaded fix crashed; the administrator boots with kpatch.enable=0 ...
  markPending(KVER, "fix", { bootId: "the-crashed-boot", at: "t" }, root);
  const safe = fakeKernel({ cmdline: "console=ttyS0 kpatch.enable=0", bootId: "the-safe-boot" });
  const r = await loadInstalled({ kernelRelease: KVER, root, paths: safe, boot: true, verify });
  assert.match(r.skipped ?? "", /kpatch\.enable=0/);
  // ... and shuts it down cleanly (the init script's stop, or the confirm timer).
  assert.deepEqual(confirmBoot(KVER, { root, paths: safe }), { confirmed: [], earlier: [] });
  assert.deepEqual(
    readBlocked(KVER, "fix", root)?.bootId,
    "the-crashed-boot",
    "blocked, by the check that runs before kpatch.enable=0 skips loading",
  );
  const next = fakeKernel({ bootId: "the-next-boot" });
  const again = await loadInstalled({ kernelRelease: KVER, root, paths: next, boot: true, verify });
  assert.deepEqual(
    again.blocked.map((b) => b.name),
    ["fix"],
  );
  assert.deepEqual(again.loaded, []);
});

test("confirmBoot() clears only this boot's markers; an earlier boot's stay for the next boot's check", () => {
  const root = libWith("fix", "other");
  markPending(KVER, "fix", { bootId: "crashed", at: "t" }, root);
  markPending(KVER, "other", { bootId: "this-boot", at: "t" }, root);
  assert.deepEqual(confirmBoot(KVER, { root, paths: fakeKernel({ bootId: "this-boot" }) }), {
    confirmed: ["other"],
    earlier: ["fix"],
  });
  assert.deepEqual(
    pendingMarks(KVER, root).map((m) => m.name),
    ["fix"],
  );
});

test("a failed load that left the patch in the kernel keeps its marker (a stalled back-out); a clean failure clears it", async () => {
  const root = libWith("stuck", "clean");
  // stuck: registered, disabled, in transition (what a back-out that stalled leaves behind).
  const k = fakeKernel({
    patches: [{ name: "stuck", enabled: false, transition: true, objects: { vmlinux: ["f"] } }],
  });
  const r = await loadInstalled({ kernelRelease: KVER, root, paths: k, boot: true, verify });
  // On this machine loading fails before insmod (not this kernel's release, or not root).
  assert.deepEqual(
    r.failed.map((f) => f.name),
    ["clean", "stuck"],
  );
  assert.deepEqual(
    pendingMarks(KVER, root).map((m) => m.name),
    ["stuck"],
  );
});

test("a dangling .ko in the state directory is reported at boot and the other patches still load", async () => {
  const root = libWith("a_fix", "z_fix");
  symlinkSync(join(root, "vanished.ko"), join(root, KVER, "m_dangling.ko"));
  const k = fakeKernel({ patches: [{ name: "z_fix", objects: { vmlinux: ["f"] } }] });
  const r = await loadInstalled({ kernelRelease: KVER, root, paths: k, boot: true, verify });
  const dangling = r.failed.find((f) => f.name === "m_dangling");
  assert.equal(dangling?.code, "KPATCH_NO_FILE");
  assert.match(dangling?.message ?? "", /m_dangling\.ko: no such file or directory/);
  assert.deepEqual(r.present, ["z_fix"], "the patch after it in order was still looked at");
  assert.ok(
    r.failed.some((f) => f.name === "a_fix"),
    "the patch before it was tried",
  );
});

test("enableBootService() enables the loader and the confirm timer (systemctl --root on a system image)", async () => {
  const which = await exec("sh", ["-c", "command -v systemctl"]);
  assert.equal(which.code, 0, "systemctl is not installed: scripts/test.sh installs systemd");
  const image = mkdtempSync(join(tmpdir(), "kpatch-image-"));
  const units = join(image, "usr", "lib", "systemd", "system");
  mkdirSync(units, { recursive: true });
  const data = join(import.meta.dirname, "..", "..", "..", "data", "kpatch");
  for (const u of ["kpatch.service", "kpatch-confirm.service", "kpatch-confirm.timer"])
    cpSync(join(data, u), join(units, u));
  assert.equal(await enableBootService({ systemdRoot: image }), undefined);
  const wants = join(image, "etc", "systemd", "system");
  // Links into the image's own /usr (absolute, as systemd makes them).
  assert.equal(
    readlinkSync(join(wants, "multi-user.target.wants", "kpatch.service")),
    "/usr/lib/systemd/system/kpatch.service",
  );
  assert.equal(
    readlinkSync(join(wants, "timers.target.wants", "kpatch-confirm.timer")),
    "/usr/lib/systemd/system/kpatch-confirm.timer",
  );
});
