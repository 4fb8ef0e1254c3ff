/**
 * The kernel's own livepatch selftests (tools/testing/selftests/livepatch of the kernel's Debian
 * source, the scripts unchanged) in the lab guest, on the lab kernel and on Debian's stock kernels
 * (6.12 with test_modules/ and insmod, 6.1 with lib/livepatch's modules and modprobe), one boot
 * per kernel: one subtest per script, which passes
 * when the script exits 0 with every one of its checks "ok"; a script that cannot run there is
 * skipped saying why (a kernel option the kernel lacks, or the script's own kselftest SKIP,
 * exit 4). How the busybox guest is given what the scripts need: src/lab/livepatch-selftests.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type TestContext } from "node:test";
import { distroLabKbuild, findDistroLab, sampleSkip } from "../src/lab/distro.js";
import { findDistroSource } from "../src/lab/distro-source.js";
import { type GuestOptions, runGuest } from "../src/lab/guest.js";
import { labModules } from "../src/lab/lab-modules.js";
import {
  buildSelftestPrograms,
  configSkipReason,
  readSelftests,
  scriptOutcome,
  selftestRun,
} from "../src/lab/livepatch-selftests.js";
import { KERNEL_SERIES, testSeries } from "../src/lab/paths.js";
import { requireLab } from "../src/lab/setup.js";
import type { Runner } from "../src/util/exec.js";

interface Target {
  /** What boots: a kernel image and the initramfs. */
  guest: GuestOptions["lab"];
  /** Kernel source (the scripts), kbuild tree and its cache key (the modules), .config (skips). */
  srcDir: string;
  kernel: { key: string; kbuildDir: string; run?: Runner; makeArgs?: readonly string[] };
  config: string;
  cpus: number;
}

async function runSelftests(t: TestContext, target: Target): Promise<void> {
  const suite = readSelftests(target.srcDir);
  if ("missing" in suite) {
    // Skipped, saying why: the kernel source has no tools/testing/selftests/livepatch we can run.
    t.skip(`no livepatch selftests this runner can use: ${suite.missing}`);
    return;
  }
  const skipAll = configSkipReason(suite, target.config);
  if (skipAll) {
    // Skipped, saying why: the kernel lacks an option every script needs (the reason names it).
    for (const script of suite.scripts) await t.test(script, { skip: skipAll }, () => {});
    return;
  }
  const started = Date.now();
  const modulesDir = await labModules({
    kernel: target.kernel,
    name: "livepatch-selftests",
    sourceDir: suite.modulesSource,
    modules: suite.modules,
    makeArgs: suite.makeArgs,
  });
  const programsDir = mkdtempSync(join(tmpdir(), "kpatch-selftests-"));
  let result: Awaited<ReturnType<typeof runGuest>>;
  try {
    await buildSelftestPrograms(suite, programsDir);
    const run = await selftestRun({
      suite,
      scripts: suite.scripts,
      modulesDir,
      programsDir,
      kernelConfig: target.config,
    });
    t.diagnostic(`modules and programs ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    result = await runGuest({
      lab: target.guest,
      files: run.files,
      commands: [run.setup, ...run.commands],
      ...(run.append ? { append: run.append } : {}),
      timeoutMs: 900_000,
      cpus: target.cpus,
      // TCG single-threaded: thread=multi can run a stale translation of code the livepatch
      // core rewrites with more than one vCPU (src/lab/int3.ts)
      tcgThread: "single",
    });
  } finally {
    rmSync(programsDir, { recursive: true, force: true });
  }
  const setup = result.commands[0]!;
  assert.equal(setup.exitCode, 0, `installing the programs in the guest failed:\n${setup.output}`);
  t.diagnostic(
    `guest run ${(result.wallMs / 1000).toFixed(1)} s (${result.accel}, ${target.cpus} vCPU), guest uptime ${result.guestReadyS} s to ${result.guestDoneS} s`,
  );
  for (const [i, script] of suite.scripts.entries()) {
    const r = result.commands[i + 1]!;
    const o = scriptOutcome(r.exitCode, r.output);
    if (o.verdict === "skip") {
      // Skipped, saying why: the script itself reported kselftest SKIP (its reason is shown).
      await t.test(script, { skip: o.reason }, () => {});
      continue;
    }
    await t.test(script, (st) => {
      const time = o.seconds === undefined ? "" : ` in ${o.seconds.toFixed(1)} s`;
      st.diagnostic(`exit ${r.exitCode}${time}`);
      for (const c of o.checks) st.diagnostic(c);
      if (o.verdict === "fail") assert.fail(`${script}: ${o.reason}\n${o.output}`);
    });
  }
}

const lab = requireLab(testSeries());

test(`livepatch selftests on the ${lab.series} lab kernel (${lab.kernelRelease})`, async (t) => {
  // two vCPUs: test-syscall hammers getpid from a process per CPU while the patch transitions
  await runSelftests(t, {
    guest: lab,
    srcDir: lab.srcDir,
    kernel: { key: lab.key, kbuildDir: lab.buildDir },
    config: lab.config,
    cpus: 2,
  });
});

// The stock kernel of the test series must pass when set up; the other series runs when it is
// set up (and its source unpacked), and says so when not; so does Debian 13's 6.12 (kpatch-lab
// setup --distro 6.12 --suite trixie: its modules built with its gcc 14 in its build root).
for (const [series, suite] of [
  ...KERNEL_SERIES.map((s) => [s, undefined] as const),
  ["6.12", "trixie"] as const,
]) {
  const distro = findDistroLab(series, { suite });
  const label = suite ? `${series} ${suite}` : series;
  const setup = `kpatch-lab setup --distro ${series}${suite ? ` --suite ${suite}` : ""}`;
  const srcDir = distro && findDistroSource(distro);
  const skip = !distro
    ? `the stock ${label} kernel is not set up (${setup})`
    : !srcDir
      ? `Debian's ${series} source ${distro.sourceVersion} is not unpacked in the cache (${setup} --source)`
      : sampleSkip(distro);
  // Skipped only with the reason above (that stock kernel or its source not set up, or its sample not buildable); CI sets up
  // both and runs both.
  test(`livepatch selftests on Debian's stock ${label} kernel`, { skip }, async (t) => {
    const d = distro!;
    t.diagnostic(d.kernelRelease);
    // one vCPU: the stock kernel's test-syscall took 93 s on two (TCG single-threaded hands each
    // vCPU its turn in slices), 3.6 s on one
    await runSelftests(t, {
      guest: d,
      srcDir: srcDir!,
      kernel: { key: `distro-${d.key}`, kbuildDir: d.headersDir!, ...distroLabKbuild(d) },
      config: d.config,
      cpus: 1,
    });
  });
}
