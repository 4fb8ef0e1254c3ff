/**
 * Which objects a touched .c reaches on a stock Debian kernel, decided by kbuild's index of the
 * whole config (issue 19, part 1): the cases a per-directory dry run missed, built by the
 * kpatch-build command with --kernel-release for the kernel the distro lab boots:
 *   - kernel/sched/rt.c, #included by kernel/sched/build_policy.c (no object of its own);
 *   - arch/x86/kvm/vmx/vmx.c, in kvm-intel.ko, listed from arch/x86/kvm/Makefile;
 *   - an amdgpu display file, in amdgpu.ko, listed from drivers/gpu/drm/amd/amdgpu/Makefile;
 *   - an arm64-only driver (the GICv3's), which is proved not built (exit 3, with the proof).
 * Then, in one guest on that kernel, each module loads with kpatch load, and the rt.c patch shows
 * in /sys/kernel/debug/sched/debug; the module patches register their klp object.
 * The patches are written for 6.12's source (test/fixtures/patches/distro-6.12).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { requireDistroLab } from "../src/lab/distro.js";
import { type GuestResult, runGuest } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { testSeries } from "../src/lab/paths.js";

const run = promisify(execFile);
const series = testSeries();
const skip = series === "6.12" ? false : `the patches are written for 6.12's source, not ${series}'s`;
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const fixtures = join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", "distro-6.12");
const out = mkdtempSync(join(tmpdir(), "kpatch-build-distro-objects-"));
test.after(() => rmSync(out, { recursive: true, force: true }));

interface ObjectsCase {
  name: string;
  /** kbuild's name of the object the touched file reaches. */
  object: string;
  target: string;
  funcs: string[];
  /** Prints the patched behaviour's marker when the patch is in. */
  probe: string;
  old: RegExp;
  new: RegExp;
}

const DEBUG = "/sys/kernel/debug/sched/debug";
const CASES: ObjectsCase[] = [
  {
    name: "sched-rt-included",
    object: "kernel/sched/build_policy.o",
    target: "vmlinux",
    funcs: ["print_rt_stats"],
    probe: `grep -c 'kpatch-ts: rt.c patched' ${DEBUG}; true`,
    old: /^0\s*$/,
    new: /^[1-9]\d*\s*$/,
  },
  {
    // kvm_intel is not loaded in the guest (no VMX under TCG): the patch waits for it.
    name: "kvm-vmx",
    object: "arch/x86/kvm/vmx/vmx.o",
    target: "kvm_intel",
    funcs: ["vmx_get_feature_msr"],
    probe: "cat /sys/kernel/livepatch/livepatch_kvm_vmx/kvm_intel/patched 2>&1 || echo none",
    old: /none\s*$/,
    new: /^0\s*$/,
  },
  {
    name: "amdgpu-dc",
    object: "drivers/gpu/drm/amd/amdgpu/../display/dc/core/dc.o",
    target: "amdgpu",
    funcs: ["dc_is_dmub_outbox_supported", "dc_enable_dmub_notifications"],
    probe: "cat /sys/kernel/livepatch/livepatch_amdgpu_dc/amdgpu/patched 2>&1 || echo none",
    old: /none\s*$/,
    new: /^0\s*$/,
  },
];

async function kpatchBuild(name: string, ...args: string[]) {
  const argv = [cli, "--kernel-release", requireDistroLab(series).kernelRelease, "-n", `livepatch-${name}`];
  try {
    const r = await run("node", [...argv, "-o", out, "-j", "2", ...args, join(fixtures, `${name}.patch`)], {
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

interface BuildJson {
  module: string;
  objects: { path: string; target: string; report: { changed: { originalName: string }[] } }[];
}

const built: string[] = [];

for (const c of CASES) {
  test(`${c.name}: the object kbuild compiles it in (${c.object}, ${c.target}) is built and diffed`, {
    skip,
  }, async () => {
    const r = await kpatchBuild(c.name, "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /no object of this kernel is built from it/);
    const result = JSON.parse(r.stdout) as BuildJson;
    assert.deepEqual(
      result.objects.map((o) => [o.path, o.target]),
      [[c.object, c.target]],
    );
    const changed = result.objects[0]!.report.changed.map((f) => f.originalName);
    for (const f of c.funcs) assert.ok(changed.includes(f), `${f} changed (${changed.join(", ")})`);
    built.push(result.module);
  });
}

test("an arm64-only driver is proved not built by this config: exit 3, with kbuild's index as the proof", {
  skip,
}, async () => {
  const r = await kpatchBuild("arm64-gic");
  assert.equal(r.code, 3, r.stderr);
  assert.match(
    r.stderr,
    /drivers\/irqchip\/irq-gic-v3\.c: not built by this config: kbuild compiles none of the config's \d{4,} objects from it, and none of their sources #includes it/,
  );
  assert.match(r.stderr, /nothing to patch \[NO_CHANGES\]/);
});

let guest: GuestResult | undefined;

test("in the guest on the stock kernel: each module loads, patches, unloads, no Call Trace", {
  skip,
}, async () => {
  assert.equal(built.length, CASES.length, "every module was built");
  const lab = requireDistroLab(series);
  const kpatch = await kpatchInGuest(lab);
  const steps = CASES.flatMap((c) => [
    `echo "@@case ${c.name} before"; ${c.probe}`,
    `kpatch load livepatch-${c.name}.ko`,
    `echo "@@case ${c.name} after"; ${c.probe}`,
    `kpatch unload livepatch_${c.name.replace(/-/g, "_")}`,
    `echo "@@case ${c.name} unloaded"; ${c.probe}`,
  ]);
  guest = await runGuest({
    lab,
    shareHost: true,
    files: [kpatch.file, ...built],
    commands: [kpatch.setup, "mount -t debugfs none /sys/kernel/debug", ...steps, "kpatch list"],
    timeoutMs: 600_000,
    memoryMb: 1024,
  });
  for (const r of guest.commands) {
    if (/^kpatch (load|unload)/.test(r.command)) assert.equal(r.exitCode, 0, `${r.command}:\n${r.output}`);
  }
  assert.doesNotMatch(guest.kernelLog, /Call Trace/, "no Call Trace in the kernel log");
  assert.doesNotMatch(guest.commands.at(-1)!.output, /livepatch_/, "nothing left loaded");
  for (const c of CASES) {
    const output = (when: string) =>
      guest!.commands
        .find((r) => r.command.startsWith(`echo "@@case ${c.name} ${when}"`))
        ?.output.replace(/^@@case [^\n]*\n/, "") ?? "";
    assert.match(output("before"), c.old, `${c.name} before`);
    assert.match(output("after"), c.new, `${c.name} after kpatch load`);
    assert.match(output("unloaded"), c.old, `${c.name} after kpatch unload`);
  }
});
