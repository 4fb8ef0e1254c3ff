/**
 * The lab on Debian's own kernel images (kpatch-lab setup --distro): the stock vmlinuz boots
 * under QEMU with the modules it needs from its package, the kernel's livepatch-sample built
 * against the linux-headers package patches /proc/cmdline live and rolls back, and the kpatch
 * command runs in the guest and manages that patch. The test series' stock kernel must be set
 * up (scripts/test.sh does it); the other series runs when it is set up, and says so when not.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { type DistroLab, findDistroLab, requireDistroLab, sampleSkip } from "../src/lab/distro.js";
import { runGuest } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { KERNEL_SERIES, testSeries } from "../src/lab/paths.js";
import { checkSmoke, SAMPLE_NAME, SAMPLE_TEXT, smokeSteps, waitTransition } from "../src/lab/smoke.js";

const execFileP = promisify(execFile);
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-lab.js");

for (const series of KERNEL_SERIES) {
  const lab: DistroLab | undefined =
    series === testSeries() ? requireDistroLab(series) : findDistroLab(series);
  const skip = lab ? false : `the stock ${series} kernel is not set up (kpatch-lab setup --distro ${series})`;

  test(`stock ${series}: Debian's vmlinuz boots with its own modules, untainted, host share and disk`, {
    skip,
  }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "lab-distro-"));
    try {
      mkdirSync(join(dir, "root", "boot.d"), { recursive: true });
      writeFileSync(join(dir, "root", "boot.d", "01-hello"), "echo booted > /disk/hello.txt\n");
      const disk = join(dir, "disk.img");
      await execFileP("mke2fs", ["-q", "-t", "ext2", "-d", join(dir, "root"), disk, "8M"]);
      const result = await runGuest({
        lab: lab!,
        shareHost: true,
        disk,
        diskBoot: true,
        commands: [
          "uname -r",
          "cat /proc/sys/kernel/tainted",
          "cut -d' ' -f1 /proc/modules | sort",
          "ls /host/etc/debian_version",
          "cat /disk/hello.txt",
        ],
      });
      const [release, tainted, modules, share, hello] = result.commands;
      assert.equal(release!.output.trim(), lab!.kernelRelease);
      assert.match(
        lab!.kernelRelease,
        series === "6.12" ? /^6\.12\.\d+\+deb12-amd64$/ : /^6\.1\.0-\d+-amd64$/,
      );
      assert.equal(tainted!.output.trim(), "0");
      const loaded = modules!.output.trim().split("\n");
      for (const m of ["9p", "9pnet_virtio", "virtio_blk", "ext4"])
        assert.ok(loaded.includes(m), `${m} loaded`);
      assert.equal(share!.exitCode, 0, "the host is mounted over 9p");
      assert.equal(hello!.output, "booted\n", "the disk's boot script ran on the ext2 disk (ext4 driver)");
      t.diagnostic(
        `${lab!.kernelRelease}: guest run ${Math.round(result.wallMs)} ms, commands start at ${result.guestReadyS} s uptime`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`stock ${series}: livepatch-sample built against the headers package patches /proc/cmdline and rolls back`, {
    skip: skip || sampleSkip(lab),
  }, async (t) => {
    const steps = smokeSteps();
    const result = await runGuest({
      lab: lab!,
      files: [lab!.sampleModule!],
      commands: [...steps.map((s) => s.command), "cat /proc/sys/kernel/tainted"],
    });
    assert.deepEqual(checkSmoke(steps, result), []);
    assert.match(result.kernelLog, /livepatch: enabling patch 'livepatch_sample'/);
    assert.match(result.kernelLog, /livepatch: 'livepatch_sample': unpatching complete/);
    // Unsigned out-of-tree livepatch module: E (unsigned), O (out of tree), K (live patched).
    const taint = Number(result.commands.at(-1)!.output.trim());
    for (const bit of [12, 13, 15]) assert.ok(taint & (1 << bit), `taint bit ${bit} in ${taint}`);
    t.diagnostic(`guest run ${Math.round(result.wallMs)} ms (${result.accel})`);
  });

  test(`stock ${series}: kpatch load, list and unload in the guest`, {
    skip: skip || sampleSkip(lab),
  }, async (t) => {
    const k = await kpatchInGuest(lab!);
    const result = await runGuest({
      lab: lab!,
      shareHost: true,
      timeoutMs: 300_000,
      files: [k.file, lab!.sampleModule!],
      commands: [
        k.setup,
        "kpatch list",
        "kpatch load livepatch-sample.ko",
        "kpatch list",
        "cat /proc/cmdline",
        `kpatch unload ${SAMPLE_NAME}`,
        waitTransition(SAMPLE_NAME),
        "kpatch list",
        "cat /proc/cmdline",
      ],
    });
    const out = result.commands.map((c) => c.output);
    for (const c of result.commands) assert.equal(c.exitCode, 0, `${c.command}: ${c.output}`);
    assert.doesNotMatch(out[1]!, new RegExp(SAMPLE_NAME));
    assert.match(out[3]!, new RegExp(`${SAMPLE_NAME}.*enabled`));
    assert.equal(out[4]!.trim(), SAMPLE_TEXT);
    assert.doesNotMatch(out[7]!, /livepatch_sample.*enabled/);
    assert.notEqual(out[8]!.trim(), SAMPLE_TEXT);
    assert.doesNotMatch(result.kernelLog, /Call Trace|WARNING:/);
    t.diagnostic(`guest run ${Math.round(result.wallMs)} ms, node copied in and kpatch run 4 times`);
  });

  test(`stock ${series}: kpatch-lab run --distro and info --distro`, { skip }, async () => {
    const run = await execFileP("node", [
      cli,
      "run",
      "--distro",
      series,
      "--",
      "cat /proc/sys/kernel/osrelease",
    ]);
    assert.match(run.stdout, new RegExp(`\\n${lab!.kernelRelease.replace(/[.+]/g, "\\$&")}\\n`));
    const info = await execFileP("node", [cli, "info", "--distro", series]);
    assert.match(info.stdout, new RegExp(`image: +${lab!.image.replace(/[.+]/g, "\\$&")} `));
  });
}

test("kpatch-lab refuses --kernel with --distro, an unknown series, and setup --debian without --distro, with usage status 2", async () => {
  for (const args of [
    ["run", "--kernel", "6.12", "--distro", "6.12", "--", "true"],
    ["run", "--distro", "5.10", "--", "true"],
    ["setup", "--distro", "../x"],
    ["setup", "--kernel", "6.12", "--debian"],
  ]) {
    await assert.rejects(execFileP("node", [cli, ...args]), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2, args.join(" "));
      assert.match(e.stderr ?? "", /exclude each other|unknown kernel series|--debian needs --distro/);
      return true;
    });
  }
});
