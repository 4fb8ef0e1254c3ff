import assert from "node:assert/strict";
import test from "node:test";
import { kernelFailure, parseConsole, qemuArgs } from "./guest.js";

const CONSOLE = [
  "[    0.000000] Linux version 6.12.57 (kpatch-ts@lab)",
  "@@KPLAB-READY 1.25@@",
  "@@KPLAB-BEGIN 000@@",
  "hello",
  "[    1.300000] livepatch: enabling patch 'x'",
  "world",
  "@@KPLAB-END 000 0@@",
  "@@KPLAB-BEGIN 001@@",
  "@@KPLAB-END 001 3@@",
  "@@KPLAB-DMESG@@",
  "[    0.000000] Linux version 6.12.57",
  "[    1.300000] livepatch: enabling patch 'x'",
  "@@KPLAB-DONE 1.80@@",
].join("\r\n");

test("parseConsole() separates command output from kernel messages and reads exit codes", () => {
  const p = parseConsole(CONSOLE, ["echo hello; echo world", "exit 3"]);
  assert.equal(p.finished, true);
  assert.equal(p.ready, 1.25);
  assert.equal(p.done, 1.8);
  assert.deepEqual(p.results, [
    { command: "echo hello; echo world", output: "hello\nworld\n", exitCode: 0 },
    { command: "exit 3", output: "", exitCode: 3 },
  ]);
  assert.match(p.kernelLog, /livepatch: enabling patch/);
});

test("parseConsole() reports an unfinished run", () => {
  const p = parseConsole("@@KPLAB-READY 1@@\n@@KPLAB-BEGIN 000@@\nhung", ["sleep 1000"]);
  assert.equal(p.finished, false);
  assert.equal(p.results.length, 0);
});

test("kernelFailure() finds panics, oopses and call traces", () => {
  assert.equal(
    kernelFailure("[ 1.0] Kernel panic - not syncing: Fatal exception", false)?.code,
    "GUEST_PANIC",
  );
  assert.equal(kernelFailure("[ 1.0] BUG: kernel NULL pointer dereference", false)?.code, "GUEST_OOPS");
  assert.equal(kernelFailure("[ 1.0] Call Trace:\n[ 1.0]  <TASK>", false)?.code, "GUEST_CALL_TRACE");
  assert.equal(kernelFailure("[ 1.0] Call Trace:", true), undefined);
  const warn = kernelFailure(
    "[ 0.9] ok\n[ 1.0] WARNING: CPU: 0 PID: 7 at fs/x.c:12 f+0x1/0x2\n[ 1.0] Call Trace:",
    false,
  );
  assert.match(warn?.context ?? "", /WARNING: CPU: 0 PID: 7 at fs\/x\.c:12[\s\S]*Call Trace:$/);
  assert.equal(kernelFailure("[ 1.0] livepatch: 'x': unpatching complete", false), undefined);
});

test("qemuArgs() shares the host read-only and attaches a disk only when asked", () => {
  const lab = { bzImage: "/k/bzImage", initramfs: "/k/i.cpio" };
  const plain = qemuArgs({ lab, commands: [] }, "/t/initrd", "tcg");
  assert.ok(!plain.includes("-virtfs") && !plain.includes("-drive"));
  assert.ok(plain.includes("-no-reboot"));
  const shared = qemuArgs({ lab, commands: [], shareHost: true, disk: "/d.img" }, "/t/initrd", "tcg");
  assert.ok(shared.some((a) => a.includes("readonly=on")));
  assert.ok(shared.some((a) => a.startsWith("file=/d.img")));
  assert.match(shared[shared.indexOf("-append") + 1]!, /kplab\.share=host/);
});

test("qemuArgs() asks for TCG's thread mode only when one is given", () => {
  const lab = { bzImage: "/k/bzImage", initramfs: "/k/initramfs.cpio" };
  const args = qemuArgs({ lab, commands: [], cpus: 2 }, "/t/initrd", "tcg,thread=single");
  assert.equal(args[args.indexOf("-accel") + 1], "tcg,thread=single");
  assert.equal(args[args.indexOf("-cpu") + 1], "max");
  assert.equal(args[args.indexOf("-smp") + 1], "2");
});
