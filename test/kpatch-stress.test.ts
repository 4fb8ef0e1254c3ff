/**
 * Stress in the lab guest, 2 vCPUs: load/unload cycles of the kernel's livepatch-sample, and of
 * an atomic-replace chain (v9 -> v10 -> v9 ..., each replaced module removed), while one reader
 * per CPU calls the patched function (reads /proc/cmdline) and checks every answer: old or new
 * behaviour only. Asserted: no oops and no Call Trace on the console, no wrong answer, every
 * load and unload succeeded, no module or patch left (lsmod, /sys/kernel/livepatch). One boot
 * per scenario.
 *
 * Which cycles use what (test/kpatch-stress.sh): cycle 1, the last one and every
 * KPATCH_STRESS_KPATCH_EVERY-th (default 10) run the real `kpatch load`/`kpatch unload`; the
 * others drive the kernel directly with busybox (insmod, wait for `transition` to read 0,
 * `echo 0 > enabled`, wait for the patch to go, rmmod), because each kpatch call starts Node in
 * the guest, ~10 s a call under TCG. The readers sleep 1 ms every 20 reads (the script says why:
 * without it each transition took ~33 s under thread=single).
 *
 * KPATCH_STRESS_CYCLES sets the cycle count (default 10, what CI affords under TCG; 100 by hand).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runKpatchSteps, sampleModule, testModules } from "./helpers/kpatch-fixtures.js";

const SCRIPT = join(import.meta.dirname, "..", "..", "test", "kpatch-stress.sh");
const CYCLES = Number(process.env["KPATCH_STRESS_CYCLES"] ?? 10);
const KPATCH_EVERY = Number(process.env["KPATCH_STRESS_KPATCH_EVERY"] ?? 10);
const CPUS = 2;

/**
 * TCG thread=single unless KPATCH_LAB_TCG_THREAD says otherwise. Under thread=multi (QEMU's
 * default here) a -smp 2 guest took "Oops: int3" within the first cycles, at static-call sites
 * the livepatch core itself rewrites with text_poke_bp at each transition's start and end
 * (sched_dynamic_klp_enable/disable, PREEMPT_DYNAMIC): task_work_run+0x5c `call
 * __SCT__cond_resched`, irqentry_exit+0x1b `jmp __SCT__irqentry_exit_cond_resched` (both
 * scenarios of one thread=multi run, the replace one during its first load; the oops's Code:
 * line shows the finished jmp, e9, at the byte the vCPU trapped on as an int3), __dentry_kill+0xd2
 * `call __SCT__cond_resched` (sample, cycle 6's insmod; a finished call, e8, there), earlier
 * vfree+0x6b and force_qs_rnp+0x101; our modules write no vmlinux text. Under thread=single
 * 100 cycles of each scenario gave no oops (see src/lab/int3.ts and the commits' figures): a
 * vCPU running a stale translation of code another vCPU rewrote is TCG's, so this test runs
 * both vCPUs on one host thread. The readers still interleave on two guest CPUs: the livepatch
 * consistency model sees two CPUs either way.
 */
const TCG_THREAD = process.env["KPATCH_LAB_TCG_THREAD"] ? {} : { tcgThread: "single" as const };

function figures(output: string): Record<string, string> {
  const line = output.split("\n").find((l) => l.startsWith("STRESS "));
  assert.ok(line, `no STRESS line in:\n${output}`);
  return Object.fromEntries(
    line
      .slice(7)
      .split(" ")
      .map((kv) => kv.split("=") as [string, string]),
  );
}

async function stress(mode: "sample" | "replace", t: { diagnostic: (s: string) => void }) {
  for (const [name, n] of [
    ["KPATCH_STRESS_CYCLES", CYCLES],
    ["KPATCH_STRESS_KPATCH_EVERY", KPATCH_EVERY],
  ] as const)
    assert.ok(Number.isInteger(n) && n > 0, `${name} must be a positive integer`);
  const m = await testModules();
  const files =
    mode === "sample"
      ? [sampleModule("livepatch", "livepatch-sample")]
      : [m["kpatch-replace-v9"], m["kpatch-replace-v10"]];
  const { result, step } = await runKpatchSteps(
    [{ name: "stress", command: `sh kpatch-stress.sh ${mode} ${CYCLES} ${KPATCH_EVERY}` }],
    {
      cpus: CPUS,
      ...TCG_THREAD,
      timeoutMs: Math.max(600_000, CYCLES * 60_000),
      files: [...files, { path: SCRIPT, name: "kpatch-stress.sh" }],
    },
  );
  const r = step("stress");
  const f = figures(r.output);
  const per = (s: string | undefined, n: string | undefined) =>
    Number(n) ? (Number(s) / Number(n)).toFixed(1) : "-";
  const log = `${result.console}\n${result.kernelLog}`;
  const oopses = log.split("\n").filter((l) => /Oops:|BUG: |general protection fault/.test(l)).length;
  const traces = log.split("\n").filter((l) => /Call Trace:/.test(l)).length;
  t.diagnostic(
    `${mode}: ${f["cycles"]} cycles on ${f["cpus"]} vCPUs (${result.accel}) in ${f["seconds"]} s: ` +
      `${f["kpatch_cycles"]} with kpatch ${per(f["kpatch_s"], f["kpatch_cycles"])} s each, ` +
      `${f["direct_cycles"]} direct ${per(f["direct_s"], f["direct_cycles"])} s each; ` +
      `${f["calls"]} answers checked (old ${f["old"]}, new ${f["new"]}), wrong ${f["wrong"]}; ` +
      `${f["ops"]} loads/unloads, failed ${f["failed"]}; leaked ${f["leaked"]}, patches left ${f["patches"]}; ` +
      `oopses ${oopses}, Call Traces ${traces}; guest ${Math.round(result.wallMs / 1000)} s`,
  );
  assert.equal(r.exitCode, 0, r.output);
  assert.equal(oopses, 0, "no oops");
  assert.equal(traces, 0, "no Call Trace");
  assert.equal(f["cpus"], String(CPUS));
  assert.equal(f["readers"], String(CPUS), "one reader per CPU ran to the end");
  assert.equal(f["wrong"], "0");
  assert.equal(f["failed"], "0");
  assert.equal(f["ops"], String(2 * CYCLES + (mode === "replace" ? 2 : 0)), "every load and unload ran");
  assert.equal(f["leaked"], "none", "no module left");
  assert.equal(f["patches"], "none", "no patch left");
  assert.ok(Number(f["kpatch_cycles"]) >= 1, "the kpatch command ran cycles");
  assert.ok(Number(f["old"]) > 0 && Number(f["new"]) > 0, "the readers saw both behaviours");
}

describe(`stress: ${CYCLES} load/unload cycles on ${CPUS} vCPUs while every CPU calls the patched function`, () => {
  it("livepatch-sample loaded and unloaded", (t) => stress("sample", t));
  it("atomic-replace chain v9 -> v10 -> v9, each replaced module unloaded", (t) => stress("replace", t));
});
