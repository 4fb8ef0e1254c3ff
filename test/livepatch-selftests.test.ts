/**
 * The kernel's own livepatch selftests (tools/testing/selftests/livepatch of the lab's source,
 * the scripts unchanged) in the lab guest, one boot for all of them: one subtest per script,
 * which passes when the script exits 0 with every one of its checks "ok"; a script that cannot
 * run here is skipped saying why (a kernel option the lab lacks, or the script's own kselftest
 * SKIP, exit 4). How the busybox guest is given what the scripts need: src/lab/livepatch-selftests.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { type GuestResult, runGuest } from "../src/lab/guest.js";
import { labModules } from "../src/lab/lab-modules.js";
import {
  buildSelftestPrograms,
  configSkipReason,
  readSelftests,
  scriptOutcome,
  selftestRun,
} from "../src/lab/livepatch-selftests.js";
import { testSeries } from "../src/lab/paths.js";
import { requireLab } from "../src/lab/setup.js";

const lab = requireLab(testSeries());

test("the kernel's livepatch selftests in the lab guest", async (t) => {
  const suite = readSelftests(lab.srcDir);
  if ("missing" in suite) {
    t.skip(`no livepatch selftests this runner can use in the ${lab.series} lab: ${suite.missing}`);
    return;
  }
  const skipAll = configSkipReason(suite, lab.config);
  let result: GuestResult | undefined;
  if (!skipAll) {
    const started = Date.now();
    const modulesDir = await labModules({
      kernel: { key: lab.key, kbuildDir: lab.buildDir },
      name: "livepatch-selftests",
      sourceDir: join(suite.dir, "test_modules"),
      modules: suite.modules,
    });
    const programsDir = mkdtempSync(join(tmpdir(), "kpatch-selftests-"));
    try {
      await buildSelftestPrograms(suite, programsDir);
      const run = await selftestRun({ suite, scripts: suite.scripts, modulesDir, programsDir });
      t.diagnostic(`modules and programs ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      result = await runGuest({
        lab,
        files: run.files,
        commands: [run.setup, ...run.commands],
        append: run.append,
        timeoutMs: 900_000,
        // two vCPUs: test-syscall hammers getpid from a process per CPU while the patch
        // transitions; TCG single-threaded, as thread=multi can run a stale translation of code
        // the livepatch core rewrites (src/lab/int3.ts)
        cpus: 2,
        tcgThread: "single",
      });
    } finally {
      rmSync(programsDir, { recursive: true, force: true });
    }
    const setup = result.commands[0]!;
    assert.equal(setup.exitCode, 0, `installing the programs in the guest failed:\n${setup.output}`);
    t.diagnostic(
      `guest run ${(result.wallMs / 1000).toFixed(1)} s (${result.accel}), guest uptime ${result.guestReadyS} s to ${result.guestDoneS} s`,
    );
  }
  for (const [i, script] of suite.scripts.entries()) {
    if (skipAll) {
      await t.test(script, { skip: skipAll }, () => {});
      continue;
    }
    const r = result!.commands[i + 1]!;
    const o = scriptOutcome(r.exitCode, r.output);
    if (o.verdict === "skip") {
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
});
