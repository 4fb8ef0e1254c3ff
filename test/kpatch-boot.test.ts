/**
 * Loading at boot in the lab, through the plain init script (data/kpatch/kpatch.init) run
 * from a persistent disk the way an init system runs it: install → reboot → the patch is
 * active; kpatch.enable=0 on the kernel command line skips it; the crash-loop guard blocks a
 * patch whose boot crashed (a real kernel panic) until `kpatch unblock`, also after a clean
 * shutdown of a kpatch.enable=0 boot and a reinstall; a dangling module link is reported and
 * the others load. Six boots of one disk.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { GuestCommandResult, GuestOptions, GuestResult } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { isKpatchError } from "../src/util/errors.js";
import { exec } from "../src/util/exec.js";
import {
  diskImage,
  lab,
  runKpatchSteps,
  type Step,
  sampleModule,
  testModules,
} from "./helpers/kpatch-fixtures.js";

const PATCHED = "this has been live patched";
const KVER = lab.kernelRelease;
const INIT_SCRIPT = readFileSync(
  join(import.meta.dirname, "..", "..", "data", "kpatch", "kpatch.init"),
  "utf8",
);

/** What an init system does at boot: /var/lib/kpatch from the disk, kpatch on PATH, the script. */
const BOOT_SCRIPT = `# kpatch-ts at boot, the way an init system would run it
mkdir -p /var/lib/kpatch /etc/default /usr/sbin
mount -o bind /disk/var/lib/kpatch /var/lib/kpatch
cp /disk/bin/kpatch /usr/sbin/kpatch && chmod 755 /usr/sbin/kpatch
echo KPATCH_CONFIRM_AFTER=0 > /etc/default/kpatch
sh /disk/etc/init.d/kpatch start
`;

interface Boot {
  result: GuestResult;
  step: (name: string) => GuestCommandResult;
}

describe("boot-time loading from a persistent disk in the lab guest", () => {
  const boots: Record<string, Boot> = {};
  let crash: unknown;
  let disk = "";
  let fsckReport = "";

  after(() => {
    if (disk) rmSync(dirname(disk), { recursive: true, force: true });
  });

  before(async () => {
    const modules = await testModules();
    const k = await kpatchInGuest(lab);
    disk = await diskImage({
      "boot.d/10-kpatch": BOOT_SCRIPT,
      "bin/kpatch": k.wrapper,
      "etc/init.d/kpatch": INIT_SCRIPT,
    });
    const files = [
      sampleModule("livepatch", "livepatch-sample"),
      sampleModule("kobject", "kobject-example"),
      modules["kpatch-crash"],
    ];
    const boot = (steps: Step[], extra: Partial<GuestOptions> = {}) =>
      runKpatchSteps(steps, { disk, diskBoot: true, files, ...extra });
    const bootLog = { name: "boot-log", command: "cat /tmp/kplab-boot.log" };
    const cleanShutdown = { name: "shutdown", command: "sh /disk/etc/init.d/kpatch stop" };

    boots["install"] = await boot([
      bootLog,
      { name: "install-plain", command: "kpatch install kobject-example.ko" },
      { name: "install", command: "kpatch install livepatch-sample.ko" },
      // A module that vanished but left its link: sorted first, it must not stop the others.
      { name: "dangling", command: `ln -s /nonexistent/gone.ko /var/lib/kpatch/${KVER}/a-gone.ko` },
      { name: "list", command: "kpatch list" },
      { name: "cmdline", command: "cat /proc/cmdline" },
      cleanShutdown,
    ]);
    boots["loaded"] = await boot([
      bootLog,
      { name: "cmdline", command: "cat /proc/cmdline" },
      { name: "list-json", command: "kpatch list --json" },
      { name: "forget-dangling", command: "kpatch uninstall a_gone" },
      cleanShutdown,
    ]);
    // The patch loads at boot, then the kernel panics: the boot never confirms.
    crash = await boot([
      { name: "pending", command: `ls /var/lib/kpatch/${KVER}/.boot` },
      { name: "crash", command: "insmod kpatch-crash.ko" },
    ]).catch((e: unknown) => e);
    // ext2 has no journal: after the crash, check the disk as an init system would at boot.
    const fsck = await exec("e2fsck", ["-f", "-y", disk]);
    assert.ok(fsck.code === 0 || fsck.code === 1, `e2fsck: ${fsck.stdout}${fsck.stderr}`);
    fsckReport =
      fsck.code === 0
        ? "clean"
        : `repaired: ${fsck.stdout.split("\n").filter((l) => /fix|Fix|differ/.test(l)).length} fixes`;
    // The administrator boots with kpatch.enable=0 after the crash and shuts down cleanly: the
    // init script's stop confirms, and must not forget the crashed boot's patch.
    boots["disabled"] = await boot(
      [
        bootLog,
        { name: "cmdline", command: "cat /proc/cmdline" },
        { name: "list-json", command: "kpatch list --json" },
        cleanShutdown,
      ],
      { append: "kpatch.enable=0" },
    );
    boots["blocked"] = await boot([
      bootLog,
      { name: "cmdline", command: "cat /proc/cmdline" },
      { name: "list", command: "kpatch list" },
      { name: "boot-again", command: "kpatch boot" },
      { name: "install-fixed", command: "kpatch install livepatch-sample.ko" },
      { name: "unblock", command: "kpatch unblock livepatch_sample && kpatch list" },
      { name: "load-all", command: "kpatch load --all && cat /proc/cmdline" },
      cleanShutdown,
    ]);
    boots["unblocked"] = await boot([
      bootLog,
      { name: "cmdline", command: "cat /proc/cmdline" },
      { name: "uninstall", command: "kpatch uninstall livepatch_sample && kpatch list" },
      cleanShutdown,
    ]);
  });

  const out = (boot: string, name: string, exit = 0) => {
    const r = boots[boot]!.step(name);
    assert.equal(r.exitCode, exit, `${boot}/${name}: exit ${r.exitCode}:\n${r.output}`);
    return r.output;
  };

  it("install keeps the module under /var/lib/kpatch/<kver>/ (refusing a plain module) and loads nothing", (t) => {
    assert.match(out("install", "install-plain", 1), /not a livepatch module .*\[KPATCH_NOT_LIVEPATCH\]/);
    assert.equal(
      out("install", "install").trim(),
      `installed livepatch_sample for kernel ${KVER}: /var/lib/kpatch/${KVER}/livepatch-sample.ko`,
    );
    assert.match(
      out("install", "list"),
      new RegExp(
        `Installed patch modules:\\n[\\s\\S]*\\n {2}livepatch_sample \\(${KVER.replace(/\./g, "\\.")}\\) /var/lib/kpatch/`,
      ),
    );
    assert.doesNotMatch(out("install", "cmdline"), new RegExp(PATCHED));
    assert.match(
      out("install", "list"),
      /a_gone \(.*\) \/var\/lib\/kpatch\/.*\/a-gone\.ko\n {4}BROKEN: Cannot read .*a-gone\.ko: no such file or directory/,
    );
    const walls = Object.values(boots).map((b) => Math.round(b.result.wallMs / 1000));
    t.diagnostic(
      `guest runs: ${walls.join(" s, ")} s (${boots["install"]!.result.accel}), plus the crash boot`,
    );
  });

  it("after a reboot the init script has loaded the patch: it is active", () => {
    // The dangling link sorted first was reported (kpatch boot exits 1 for it), and the patch
    // after it still loaded.
    assert.match(
      out("loaded", "boot-log"),
      /loaded livepatch_sample\nkpatch: error: Cannot read .*a-gone\.ko: no such file or directory \[KPATCH_NO_FILE\]\n.*boot script 10-kpatch exited 1/,
    );
    assert.doesNotMatch(out("loaded", "boot-log"), /internal error/);
    assert.match(out("loaded", "forget-dangling"), /uninstalled a_gone/);
    assert.equal(out("loaded", "cmdline").trim(), PATCHED);
    const json = JSON.parse(out("loaded", "list-json"));
    assert.deepEqual(
      json.loaded.map((p: { name: string; enabled: boolean }) => [p.name, p.enabled]),
      [["livepatch_sample", true]],
    );
    assert.equal(json.installed[1].name, "livepatch_sample");
    assert.equal(json.installed[1].blocked, undefined);
    assert.match(boots["loaded"]!.result.kernelLog, /kpatch: loaded livepatch_sample/);
    assert.match(out("loaded", "shutdown"), /confirmed: livepatch_sample/);
  });

  it("kpatch.enable=0 on the kernel command line skips it, and its clean shutdown keeps the crash on record", () => {
    assert.match(
      out("disabled", "boot-log"),
      /not loading patches: kpatch\.enable=0 is on the kernel command line/,
    );
    assert.match(out("disabled", "cmdline"), /kpatch\.enable=0/);
    const json = JSON.parse(out("disabled", "list-json"));
    assert.deepEqual(json.loaded, []);
    assert.match(json.installed[0].blocked?.reason ?? "", /ended without a clean shutdown/);
    assert.match(out("disabled", "shutdown"), /confirmed: \(none pending\)/);
  });

  it("crash-loop guard: a boot that loaded the patch and crashed blocks it at the next boot", (t) => {
    t.diagnostic(`e2fsck after the crash: ${fsckReport}`);
    assert.ok(isKpatchError(crash), `the crash boot must fail: ${crash}`);
    assert.equal(crash.code, "GUEST_PANIC");
    assert.match(crash.message, /kpatch-ts test: simulated crash/);
    // The first boot after the crash (kpatch.enable=0) blocked it; this one keeps it blocked.
    assert.match(out("disabled", "boot-log"), /livepatch_sample: blocked by the crash-loop guard/);
    assert.match(
      out("blocked", "boot-log"),
      /not loading livepatch_sample: blocked: the boot that loaded it/,
    );
    assert.match(out("blocked", "boot-log"), /boot script 10-kpatch exited 0/);
    assert.match(out("blocked", "cmdline"), /console=ttyS0/, "not patched");
    assert.match(
      out("blocked", "list"),
      /livepatch_sample \(.*\n {4}BLOCKED at boot by the crash-loop guard: the boot that loaded it \(.*\) ended without a clean shutdown or 'kpatch boot --confirm': it may have crashed the kernel; 'kpatch unblock livepatch_sample' lets it load/,
    );
    assert.match(out("blocked", "boot-again"), /not loading livepatch_sample: blocked/);
    assert.match(
      out("blocked", "install-fixed"),
      /installed livepatch_sample .*\n.*warning: livepatch_sample is still blocked by the crash-loop guard \(.*\); it will not load at boot until 'kpatch unblock livepatch_sample'/,
    );
    assert.match(out("blocked", "unblock"), /unblocked livepatch_sample: it loads at the next boot/);
    assert.doesNotMatch(out("blocked", "unblock"), /BLOCKED/);
    // The kernel's sample carries no run-pre record: one line says its code was not compared.
    assert.equal(
      out("blocked", "load-all").replace(
        /^kpatch: \S+livepatch-sample\.ko: no run-pre record: code not compared[^\n]*\n/,
        "",
      ),
      `loaded livepatch_sample\n${PATCHED}\n`,
      "load --all loads it now",
    );
  });

  it("once unblocked it loads at the next boot again; uninstall removes it", () => {
    assert.equal(out("unblocked", "cmdline").trim(), PATCHED);
    assert.match(
      out("unblocked", "uninstall"),
      new RegExp(
        `uninstalled livepatch_sample \\(kernel ${KVER.replace(/\./g, "\\.")}\\)[\\s\\S]*Installed patch modules:\\n {2}\\(none\\)`,
      ),
    );
  });
});
