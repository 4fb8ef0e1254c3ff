/**
 * Which objects a touched .c reaches on a stock Debian kernel, decided by kbuild's index of the
 * whole config (issue 19, part 1): the cases a per-directory dry run missed, built by the
 * kpatch-build command with --kernel-release for the kernel the distro lab boots:
 *   - kernel/sched/rt.c, #included by kernel/sched/build_policy.c (no object of its own);
 *   - arch/x86/kvm/vmx/vmx.c, in kvm-intel.ko, listed from arch/x86/kvm/Makefile;
 *   - an amdgpu display file, in amdgpu.ko, listed from drivers/gpu/drm/amd/amdgpu/Makefile;
 *   - an arm64-only driver (the GICv3's), which is proved not built (exit 3, with the proof);
 *   - mm/memory.c's do_wp_page, whose new code calls unchanged helpers of which vmlinux has
 *     several same-named local copies (set_ptes.constprop.0: 5, folio_put: 3, out-of-line static
 *     inlines and a clone): each is resolved by link order to memory.o's own copy, which the
 *     module's run-pre record holds so kpatch load compares it with the running kernel's; the
 *     record's set_ptes.constprop.0 is refused at every other copy's position (their code is
 *     not memory.c's), so a wrong pick fails the build or the load; else it is copied.
 * Then, in one guest on that kernel, each module loads with kpatch load, and the rt.c patch shows
 * in /sys/kernel/debug/sched/debug; the module patches register their klp object; the patched
 * do_wp_page logs the copy-on-write faults of a task named kpts-cow.
 * The patches are written for 6.12's source (test/fixtures/patches/distro-6.12).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type TestContext } from "node:test";
import { promisify } from "node:util";
import { readElf } from "../src/elf/index.js";
import { KernelImage } from "../src/kernel-image/index.js";
import { requireDistroLab } from "../src/lab/distro.js";
import { type GuestResult, runGuest } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { testSeries } from "../src/lab/paths.js";
import { checkRecorded } from "../src/run-pre/run-pre-check.js";
import { decodeRunPreRecord, RUNPRE_SECTION } from "../src/run-pre/runpre-record.js";
import { imageCode } from "../src/run-pre/target-code.js";

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
  /**
   * Unchanged local functions the new code calls that vmlinux has more than once: the module
   * must name one by sympos (checked below) or carry a copy; `distinct` ones' other copies hold
   * other code, so a wrong sympos would be refused.
   */
  helpers?: { name: string; distinct: boolean }[];
  old: RegExp;
  new: RegExp;
}

const DEBUG = "/sys/kernel/debug/sched/debug";
const WP_MARK = "kpatch-ts: do_wp_page in kpts-cow";
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
  {
    // The subshell's fork write-protects the shell's pages: its next writes are COW faults.
    // printf, not echo: /proc/PID/comm keeps a newline.
    name: "wp-page-helpers",
    object: "mm/memory.o",
    target: "vmlinux",
    funcs: ["do_wp_page"],
    probe: `n=$(dmesg | grep -c "${WP_MARK}"); sh -c 'printf kpts-cow > /proc/$$/comm; (true); x=1; true'; echo $(($(dmesg | grep -c "${WP_MARK}") - n))`,
    old: /^0\s*$/,
    new: /^[1-9]\d*\s*$/,
    helpers: [
      { name: "set_ptes.constprop.0", distinct: true },
      { name: "folio_put", distinct: false },
    ],
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
  objects: {
    path: string;
    target: string;
    report: {
      changed: { originalName: string }[];
      klp: { name: string; sympos: number }[];
      copied: { name: string; why: string }[];
    };
  }[];
}

const built: string[] = [];

for (const c of CASES) {
  test(`${c.name}: the object kbuild compiles it in (${c.object}, ${c.target}) is built and diffed`, {
    skip,
  }, async (t) => {
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
    if (c.helpers) await checkHelpers(t, c.helpers, result);
  });
}

/**
 * Each helper is several same-named locals in the stock image's kallsyms; the module names it by
 * sympos (the record's copy matches the image there and, for a distinct one, nowhere else) or
 * carries its own copy.
 */
async function checkHelpers(
  t: TestContext,
  helpers: readonly { name: string; distinct: boolean }[],
  result: BuildJson,
) {
  const image = await KernelImage.open(requireDistroLab(series).bzImage);
  const code = imageCode(image);
  const { report } = result.objects[0]!;
  const section = readElf(readFileSync(result.module), result.module).findSection(RUNPRE_SECTION);
  assert.ok(section, `${result.module} has a run-pre record`);
  const recorded = decodeRunPreRecord(section.data, result.module);
  for (const h of helpers) {
    const count = image.symbols().named(h.name).length;
    assert.ok(
      count > 1,
      `${h.name}: ${count} copies in the stock kernel's kallsyms (the case needs several)`,
    );
    const klp = report.klp.find((k) => k.name === h.name);
    const copied = report.copied.find((k) => k.name === h.name);
    assert.ok(klp || copied, `${h.name} is resolved or copied`);
    if (!klp) {
      t.diagnostic(`${h.name}: copied (${copied!.why})`);
      continue;
    }
    assert.ok(klp.sympos >= 1 && klp.sympos <= count, `${h.name},${klp.sympos} is one of the ${count}`);
    const rec = recorded.find((f) => f.name === h.name);
    assert.ok(rec, `the run-pre record holds ${h.name} (kpatch load compares it with the running kernel)`);
    assert.equal(rec.sympos, klp.sympos);
    const statusAt = (sympos: number) =>
      checkRecorded([{ ...rec, sympos }], () => code, "image").functions[0]!.status;
    const statuses = Array.from({ length: count }, (_, i) => statusAt(i + 1));
    assert.match(
      statuses[klp.sympos - 1]!,
      /^(matched|allowed)$/,
      `${h.name},${klp.sympos} is memory.o's code`,
    );
    if (h.distinct) {
      statuses.forEach((s, i) => {
        if (i + 1 !== klp.sympos) assert.equal(s, "mismatch", `${h.name},${i + 1} would be refused`);
      });
    }
    t.diagnostic(
      `${h.name}: sympos ${klp.sympos} of ${count}; the record against each copy: ${statuses.join(", ")}`,
    );
  }
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
