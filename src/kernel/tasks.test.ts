import assert from "node:assert/strict";
import test from "node:test";
import { fakeKernel } from "../../test/helpers/fake-kernel.js";
import { findPatch } from "./livepatch-sysfs.js";
import { blockingTasks, describeTask, frameFunction, readTasks, statFlags } from "./tasks.js";

test("statFlags() reads the flags field even when the comm holds spaces and parentheses", () => {
  assert.equal(statFlags("12 (a (b) c) S 2 0 0 0 -1 2129984 0 0"), 2129984);
  assert.equal(statFlags("garbage"), 0);
});

test("frameFunction() takes the function of a /proc/<pid>/stack frame", () => {
  assert.equal(frameFunction("[<0>] schedule_timeout+0x9e/0x150"), "schedule_timeout");
  assert.equal(frameFunction("kpatch_stall_loop+0x2b/0x50 [kpatch_stall_target]"), "kpatch_stall_loop");
  assert.equal(frameFunction("[<0>] 0xffffffffc0001000"), undefined);
});

test("blockingTasks() names the tasks not yet in the target state and the changed function they sit in", () => {
  const k = fakeKernel({
    patches: [{ name: "stall", transition: true, objects: { kpatch_stall_target: ["kpatch_stall_loop"] } }],
    tasks: [
      { pid: 1, comm: "init", patchState: 1 },
      {
        pid: 45,
        comm: "kpatch-stall",
        kthread: true,
        patchState: 0,
        stack: [
          "schedule_timeout+0x9e/0x150",
          "kpatch_stall_loop+0x2b/0x50 [kpatch_stall_target]",
          "kthread+0xd2/0x100",
        ],
      },
      { pid: 50, tid: 51, comm: "worker", patchState: 0, stack: ["do_nanosleep+0x1/0x2"] },
      { pid: 60, comm: "idle", patchState: -1 },
    ],
  });
  assert.equal(readTasks(k).length, 4);
  const blockers = blockingTasks(findPatch("stall", k)!, k);
  assert.deepEqual(
    blockers.map((t) => [t.pid, t.tid, t.comm, t.kthread, t.function]),
    [
      [45, 45, "kpatch-stall", true, "kpatch_stall_loop [kpatch_stall_target]"],
      [50, 51, "worker", false, undefined],
    ],
  );
  assert.match(
    describeTask(blockers[0]!),
    /^pid 45 \(kpatch-stall\) kernel thread sits in kpatch_stall_loop/,
  );
  assert.match(describeTask(blockers[1]!), /pid 50 tid 51 \(worker\) is not in a changed function/);
});

test("blockingTasks() while unpatching: a task in the patch's new code blocks", () => {
  const k = fakeKernel({
    patches: [{ name: "stall_patch", enabled: false, transition: true, objects: { mod: ["loop"] } }],
    tasks: [
      {
        pid: 9,
        comm: "k",
        kthread: true,
        patchState: 1,
        stack: ["schedule+0x1/0x2", "loop_new+0x2b/0x50 [stall_patch]"],
      },
    ],
  });
  assert.equal(
    blockingTasks(findPatch("stall_patch", k)!, k)[0]?.function,
    "loop_new [stall_patch] (the patch's new code)",
  );
});

test("blockingTasks() while unpatching: tasks still in state 1 block", () => {
  const k = fakeKernel({
    patches: [{ name: "p", enabled: false, transition: true, objects: { vmlinux: ["f"] } }],
    tasks: [
      { pid: 7, comm: "a", patchState: 1, stack: ["f+0x1/0x10"] },
      { pid: 8, comm: "b", patchState: 0 },
    ],
  });
  assert.deepEqual(
    blockingTasks(findPatch("p", k)!, k).map((t) => [t.pid, t.function]),
    [[7, "f"]],
  );
});
