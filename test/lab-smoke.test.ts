/**
 * The lab end to end: a real kernel under QEMU, the kernel's own livepatch sample loaded,
 * /proc/cmdline patched live and restored. Also what the runner reports when a command fails
 * or the guest hangs.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { runGuest } from "../src/lab/guest.js";
import { testSeries } from "../src/lab/paths.js";
import { requireLab } from "../src/lab/setup.js";
import { checkSmoke, sampleModule, smokeSteps } from "../src/lab/smoke.js";

const lab = requireLab(testSeries());

test("smoke: livepatch-sample patches /proc/cmdline live and rolls back", async (t) => {
  const steps = smokeSteps();
  const result = await runGuest({ lab, files: [sampleModule(lab)], commands: steps.map((s) => s.command) });
  assert.deepEqual(checkSmoke(steps, result), []);
  assert.match(result.kernelLog, /livepatch: enabling patch 'livepatch_sample'/);
  assert.match(result.kernelLog, /livepatch: 'livepatch_sample': unpatching complete/);
  t.diagnostic(
    `guest run ${Math.round(result.wallMs)} ms (${result.accel}), guest uptime at end ${result.guestDoneS} s`,
  );
});

test("runGuest() reports each command's exit status and output, whatever the previous returned", async () => {
  const result = await runGuest({
    lab,
    files: [{ name: "data.txt", data: "payload\n" }],
    commands: ["cat data.txt; exit 7", "uname -r", "ls /nonexistent"],
  });
  assert.equal(result.commands[0]!.output, "payload\n");
  assert.equal(result.commands[0]!.exitCode, 7);
  assert.equal(result.commands[1]!.output.trim(), lab.kernelRelease);
  assert.equal(result.commands[1]!.exitCode, 0);
  assert.notEqual(result.commands[2]!.exitCode, 0);
  assert.match(result.commands[2]!.output, /nonexistent/);
});

test("runGuest() fails with GUEST_TIMEOUT and the console when the guest hangs", async () => {
  await assert.rejects(
    runGuest({ lab, commands: ["echo hanging; sleep 600"], timeoutMs: 15_000 }),
    (
      e: Error & {
        code?: string;
      },
    ) => {
      assert.equal(e.code, "GUEST_TIMEOUT");
      assert.match(e.message, /hanging/);
      return true;
    },
  );
});

const execFileP = promisify(execFile);

test("runGuest() boots once more when the guest fails before its first command, then reports the failure", async () => {
  // rdinit= names no program: the kernel panics before the init runs, on both boots.
  const script = `import { runGuest } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "lab", "guest.js"))};
    const lab = ${JSON.stringify({ bzImage: lab.bzImage, initramfs: lab.initramfs })};
    try { await runGuest({ lab, commands: ["true"], append: "rdinit=/kpatch-ts-no-init", timeoutMs: 60000 }); }
    catch (e) { console.log(e.code); }`;
  const r = await execFileP("node", ["--input-type=module", "-e", script]);
  assert.equal(r.stdout.trim(), "GUEST_PANIC");
  const retries =
    r.stderr.match(/kpatch-lab: the guest failed to boot, booting it once more: .*Kernel panic/g) ?? [];
  assert.equal(retries.length, 1, r.stderr);
});
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-lab.js");

test("kpatch-lab run prints outputs and exits 1 when a command fails", async () => {
  const ok = await execFileP("node", [
    cli,
    "run",
    "--kernel",
    lab.series,
    "--",
    "echo one",
    "cat /proc/sys/kernel/osrelease",
  ]);
  assert.match(ok.stdout, /\$ echo one\none\n/);
  assert.match(ok.stdout, new RegExp(lab.kernelRelease.replace(/[.+]/g, "\\$&")));
  await assert.rejects(
    execFileP("node", [cli, "run", "--kernel", lab.series, "--", "false"]),
    (e: { code?: number; stdout?: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stdout ?? "", /\[exit status 1\]/);
      return true;
    },
  );
});

test("kpatch-lab rejects an unknown kernel series with usage status 2", async () => {
  await assert.rejects(
    execFileP("node", [cli, "run", "--kernel", "5.10", "--", "true"]),
    (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? "", /unknown kernel series '5\.10'/);
      return true;
    },
  );
});
