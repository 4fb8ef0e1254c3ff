/**
 * A stalled transition in the lab, the CLI running inside the guest. kpatch_stall_target's
 * kthread never leaves kpatch_stall_loop(); kpatch_stall_patch replaces that function, so its
 * transition cannot finish. `kpatch load` must signal, wait up to its timeout, name the task
 * and the function it sits in, back the patch out (disable, wait, rmmod) and exit 3. The
 * other way round too: with the patch applied before the target loads, the kthread sits in
 * the new function, and `kpatch unload` must report it and enable the patch again.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { GuestCommandResult, GuestResult } from "../src/lab/guest.js";
import { runKpatchSteps, testModules } from "./helpers/kpatch-fixtures.js";

const STEPS = [
  { name: "target", command: "insmod kpatch-stall-target.ko && ps -o pid,comm | grep '[k]patch-stall'" },
  { name: "load-stalls", command: "kpatch load --timeout 4 --signal-after 1 kpatch-stall-patch.ko" },
  {
    name: "after-load",
    command: "ls /sys/kernel/livepatch | wc -l; grep -c '^kpatch_stall_patch ' /proc/modules",
  },
  {
    name: "signal",
    command:
      "kpatch load --timeout 20 --signal-after 100 kpatch-stall-patch.ko > /tmp/load.out 2>&1 & p=$!; " +
      "i=0; until [ -e /sys/kernel/livepatch/kpatch_stall_patch ] || [ $i -gt 200 ]; do sleep 0.1; i=$((i+1)); done; " +
      'kpatch signal; wait $p; echo "load exited $?"',
  },
  { name: "load-json", command: "kpatch load --json --timeout 2 --signal-after 0 kpatch-stall-patch.ko" },
  {
    name: "after-json",
    command: "ls /sys/kernel/livepatch | wc -l; grep -c '^kpatch_stall_patch ' /proc/modules",
  },
  {
    name: "patch-first",
    command: "rmmod kpatch_stall_target && kpatch load kpatch-stall-patch.ko && kpatch list",
  },
  { name: "target-patched", command: "insmod kpatch-stall-target.ko && kpatch list" },
  { name: "unload-stalls", command: "kpatch unload --timeout 4 --signal-after 1 kpatch_stall_patch" },
  {
    name: "after-unload",
    command:
      "cat /sys/kernel/livepatch/kpatch_stall_patch/enabled /sys/kernel/livepatch/kpatch_stall_patch/transition",
  },
  { name: "cleanup", command: "rmmod kpatch_stall_target && kpatch unload kpatch_stall_patch" },
  { name: "clean", command: "ls /sys/kernel/livepatch | wc -l; cut -d' ' -f1 /proc/modules | wc -l" },
] as const;

type Name = (typeof STEPS)[number]["name"];

describe("a stalled transition in the lab guest", () => {
  let result: GuestResult;
  let step: (name: Name) => GuestCommandResult;

  before(async () => {
    const m = await testModules();
    const run = await runKpatchSteps(STEPS, { files: [m["kpatch-stall-target"], m["kpatch-stall-patch"]] });
    result = run.result;
    step = run.step;
  });

  const exit = (name: Name, code: number) => {
    const r = step(name);
    assert.equal(r.exitCode, code, `${name}: exit ${r.exitCode}:\n${r.output}`);
    return r.output;
  };

  it("load: reports the kthread and the function it sits in, backs the patch out, exits 3", (t) => {
    const pid = /^\s*(\d+)\s+kpatch-stall/m.exec(exit("target", 0))?.[1];
    assert.ok(pid, "the kthread runs");
    const out = exit("load-stalls", 3);
    assert.match(
      out,
      /kpatch_stall_patch: transition still running after \d\.\d s; signalled 0 task\(s\), 1 kernel thread\(s\) cannot be signalled/,
    );
    assert.match(
      out,
      new RegExp(
        `Cannot load kpatch_stall_patch: the transition did not finish within 4 s; blocked by:\\n {2}pid ${pid} \\(kpatch-stall\\) kernel thread sits in kpatch_stall_loop \\[kpatch_stall_target\\]\\n {6}`,
      ),
    );
    assert.match(
      out,
      /kpatch_stall_loop\+0x[0-9a-f]+\/0x[0-9a-f]+ \[kpatch_stall_target\]/,
      "its stack is shown",
    );
    assert.match(
      out,
      /The patch was backed out: disabled and unloaded; the system is as before\. \[KPATCH_TRANSITION_STALLED\]/,
    );
    assert.equal(exit("after-load", 1).trim().split(/\s+/).join(" "), "0 0", "no patch and no module left");
    t.diagnostic(`guest run ${Math.round(result.wallMs)} ms (${result.accel})`);
  });

  it("signal: names the tasks that block a transition in progress", () => {
    const out = exit("signal", 0);
    assert.match(
      out,
      /kpatch_stall_patch: patching; 1 task\(s\) block it, 0 signalled\n {2}pid \d+ \(kpatch-stall\) kernel thread sits in kpatch_stall_loop \[kpatch_stall_target\]/,
    );
    assert.match(out, /load exited 3/);
  });

  it("load --json: the report as JSON, with the blocking task", () => {
    const out = exit("load-json", 3);
    const json = JSON.parse(out.slice(out.indexOf("{"), out.lastIndexOf("}") + 1));
    assert.equal(json.error.code, "KPATCH_TRANSITION_STALLED");
    assert.equal(json.error.patch, "kpatch_stall_patch");
    assert.equal(json.error.blockers.length, 1);
    assert.equal(json.error.blockers[0].comm, "kpatch-stall");
    assert.equal(json.error.blockers[0].kthread, true);
    assert.equal(json.error.blockers[0].function, "kpatch_stall_loop [kpatch_stall_target]");
    assert.equal(exit("after-json", 1).trim().split(/\s+/).join(" "), "0 0");
  });

  it("a patch for a module not loaded yet applies when the module loads", () => {
    assert.match(
      exit("patch-first", 0),
      /loaded kpatch_stall_patch[\s\S]*kpatch_stall_target \(not loaded yet\): kpatch_stall_loop/,
    );
    assert.match(
      exit("target-patched", 0),
      /kpatch_stall_patch \[enabled\]\n {4}kpatch_stall_target: kpatch_stall_loop/,
    );
  });

  it("unload: reports the kthread sitting in the patch's new code, enables the patch again, exits 3", () => {
    const out = exit("unload-stalls", 3);
    assert.match(
      out,
      /Cannot unload kpatch_stall_patch: the transition did not finish within 4 s; blocked by:\n {2}pid \d+ \(kpatch-stall\) kernel thread sits in kpatch_stall_loop_new \[kpatch_stall_patch\] \(the patch's new code\)/,
    );
    assert.match(
      out,
      /The patch was enabled again and stays loaded; the system is as before\. \[KPATCH_TRANSITION_STALLED\]/,
    );
    assert.equal(exit("after-unload", 0).trim().split(/\s+/).join(" "), "1 0", "enabled, not in transition");
  });

  it("with the kthread gone the patch unloads, and nothing is left", () => {
    assert.match(exit("cleanup", 0), /unloaded kpatch_stall_patch/);
    assert.equal(exit("clean", 0).trim().split(/\s+/).join(" "), "0 0");
  });
});
