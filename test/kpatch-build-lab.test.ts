/**
 * kpatch-build end to end: real patches to the lab kernel's source, built into livepatch
 * modules, loaded into the running lab kernel under QEMU: old behaviour before, new after
 * load, old again after disable and unload, and no Call Trace in the kernel log (runGuest fails
 * on one). And patches that must be refused, with the tree left clean.
 * The patches are per series under test/fixtures/patches/<series>/.
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { kpatchBuild } from "../src/kpatch-build/kpatch-build.js";
import { runGuest } from "../src/lab/guest.js";
import { labTree } from "../src/lab/lab-tree.js";
import { testSeries } from "../src/lab/paths.js";
import { requireLab } from "../src/lab/setup.js";
import { waitTransition } from "../src/lab/smoke.js";
import { normalizeModuleName } from "../src/util/module-name.js";
import { Progress } from "../src/util/progress.js";
import { cleanTreeState } from "./helpers/tree-state.js";

/** 6.12 by default; KPATCH_LAB_SERIES=6.1 runs the same cases on the 6.1 lab. */
const lab = requireLab(testSeries());
const PATCHES = join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", lab.series);
const out = mkdtempSync(join(tmpdir(), "kpatch-build-lab-"));
test.after(() => rmSync(out, { recursive: true, force: true }));

async function build(patch: string | string[], extra: { replace?: boolean; name?: string } = {}) {
  const patches = (Array.isArray(patch) ? patch : [patch]).map((p) => join(PATCHES, `${p}.patch`));
  return kpatchBuild({
    tree: labTree(lab),
    patches,
    outDir: out,
    replace: extra.replace ?? true,
    jobs: 2,
    skipCleanup: false,
    progress: new Progress({ quiet: true }),
    ...(extra.name ? { name: extra.name } : {}),
  });
}

const kname = normalizeModuleName;
const load = (mod: string) => [`insmod ${mod}.ko`, waitTransition(kname(mod))];
const unload = (mod: string) => [
  `echo 0 > /sys/kernel/livepatch/${kname(mod)}/enabled`,
  waitTransition(kname(mod)),
  `rmmod ${kname(mod)}`,
];

interface Case {
  patch: string;
  /** Functions the module must patch (target:name). */
  funcs: string[];
  probe: string;
  old: RegExp;
  new: RegExp;
  /** Commands before the first probe (e.g. loading the module the patch targets). */
  setup?: string[];
  files?: string[];
  /** What the probe shows after unloading, when not `old` (counters that went on). */
  unloaded?: RegExp;
  /** What the kernel log must show (e.g. callbacks). */
  log?: RegExp[];
}

const cmdlineOld = /rdinit=\/init\n$/;
const CASES: Case[] = [
  {
    patch: "cmdline",
    funcs: ["vmlinux:cmdline_proc_show"],
    probe: "cat /proc/cmdline",
    old: cmdlineOld,
    new: / kpatch-ts=live\n$/,
  },
  {
    patch: "version",
    funcs: ["vmlinux:version_proc_show"],
    probe: "cat /proc/version",
    old: /^Linux version [^\n]*\n$/,
    new: /\nkpatch-ts: version patched\n$/,
  },
  {
    // task_cpus_allowed() is inlined into proc_pid_status(): the caller is what gets patched.
    patch: "inline",
    funcs: ["vmlinux:proc_pid_status"],
    probe: "grep Kpatch_ts /proc/self/status || true",
    old: /^$/,
    new: /^Kpatch_ts:\tinlined\n$/,
  },
  {
    // show_val_kb() is inlined into meminfo_proc_show(), which uses static_cpu_has(): its slow
    // path in .altinstr_aux goes into the module with it.
    patch: "meminfo-inline",
    funcs: ["vmlinux:meminfo_proc_show"],
    probe: "grep MemTotal /proc/meminfo",
    old: /^MemTotal: +\d+ kB\n$/,
    new: /^MemTotal: +\d+ KiB\n$/,
  },
  {
    // SYSCALL_DEFINE1(newuname)'s body __do_sys_newuname is an out-of-line `static inline`, which
    // the kernel's `inline` makes notrace: no ftrace hook. The patch carries its new copy and
    // redirects its caller, the syscall stub, instead.
    patch: "syscall-notrace",
    funcs: ["vmlinux:__x64_sys_newuname"],
    probe: "uname -m",
    old: /^x86_64\n$/,
    new: /^kpatched\n$/,
  },
  {
    // A new pr_debug(): its descriptor goes into the module's __dyndbg, listed under the patch
    // module in the control file and enabled there like any other; its static key is the copy's.
    patch: "pr-debug",
    funcs: ["vmlinux:cmdline_proc_show"],
    probe:
      "echo 'func cmdline_proc_show +p' > /proc/dynamic_debug/control 2>/dev/null; cat /proc/cmdline; dmesg | grep -c 'kpatch-ts: cmdline read by'; grep cmdline_proc_show /proc/dynamic_debug/control",
    old: /rdinit=\/init\n0\n$/,
    new: / kpatch-ts=debug\n1\nfs\/proc\/cmdline\.c:\d+ \[livepatch_pr_debug\]cmdline_proc_show =p "kpatch-ts: cmdline read by %d\\n"\n$/,
    unloaded: /rdinit=\/init\n1\n$/,
  },
  {
    // __set_task_comm()'s tracepoint: its static key __tracepoint_task_rename is not exported, so
    // the patch's __jump_table entry reaches it through .klp.rela.vmlinux.__jump_table, applied
    // before jump_label_add_module(). The event, enabled before the patch loads, still fires from
    // the patched copy (the count goes on: 1, 2, 3).
    patch: "tracepoint-key",
    funcs: ["vmlinux:__set_task_comm"],
    setup: [
      "mount -t tracefs nodev /sys/kernel/tracing",
      "echo 1 > /sys/kernel/tracing/events/task/task_rename/enable",
    ],
    probe:
      "sh -c 'echo kptsx > /proc/$$/comm; read c < /proc/$$/comm; echo $c'; grep -c 'newcomm=kptsx' /sys/kernel/tracing/trace",
    old: /^kptsx\n1\n$/,
    new: /^kpts-patched\n2\n$/,
    unloaded: /^kptsx\n3\n$/,
  },
  {
    // filldir64() checks each user address against USER_PTR_MAX, a runtime constant vmlinux
    // writes into the code at boot: the module's copy reads the variable (as a module build
    // does); a wrong value would fail every getdents64 and ls would list nothing.
    patch: "runtime-const",
    funcs: ["vmlinux:filldir64"],
    probe: "touch /tmp/kpts-hidden /tmp/kpts-shown; ls /tmp | grep kpts",
    old: /^kpts-hidden\nkpts-shown\n$/,
    new: /^kpts-shown\n$/,
  },
  {
    patch: "new-function",
    funcs: ["vmlinux:cmdline_proc_show"],
    probe: "cat /proc/cmdline",
    old: cmdlineOld,
    new: / extra=new-function\n$/,
  },
  {
    patch: "new-global",
    funcs: ["vmlinux:cmdline_proc_show"],
    probe: "cat /proc/cmdline; cat /proc/cmdline",
    old: /rdinit=\/init\n[^\n]*rdinit=\/init\n$/,
    new: / reads=1\n.* reads=2\n$/,
  },
  {
    patch: "static-local",
    funcs: ["vmlinux:version_proc_show"],
    probe: "cat /proc/version; cat /proc/version",
    old: /^Linux version [^\n]*\nLinux version [^\n]*\n$/,
    new: /^calls=1 Linux version [^\n]*\ncalls=2 Linux/,
  },
  {
    patch: "warn",
    funcs: ["vmlinux:version_proc_show"],
    probe: "cat /proc/version",
    old: /^Linux version/,
    new: /^warn-guarded Linux version/,
  },
  {
    patch: "two-files",
    funcs: ["vmlinux:cmdline_proc_show", "vmlinux:version_proc_show"],
    probe: "cat /proc/cmdline /proc/version",
    old: /rdinit=\/init\nLinux version/,
    new: / two-files\ntwo-files Linux version/,
  },
  {
    patch: "module",
    funcs: ["kobject_example:foo_show"],
    setup: ["insmod kobject-example.ko", "echo 5 > /sys/kernel/kobject_example/foo"],
    files: [join(lab.buildDir, "samples", "kobject", "kobject-example.ko")],
    probe: "cat /sys/kernel/kobject_example/foo",
    old: /^5\n$/,
    new: /^5 kpatched\n$/,
  },
  {
    patch: "shadow",
    funcs: ["vmlinux:cmdline_proc_show"],
    probe: "cat /proc/cmdline; cat /proc/cmdline",
    old: /rdinit=\/init\n[^\n]*rdinit=\/init\n$/,
    new: / shadow_reads=1\n.* shadow_reads=2\n$/,
    log: [/kpatch-ts: shadow variables freed/],
  },
  {
    patch: "callbacks",
    funcs: ["vmlinux:version_proc_show"],
    probe: "cat /proc/version",
    old: /^Linux version/,
    new: /^callbacks Linux version/,
    log: [
      /kpatch-ts: pre-patch callback \(vmlinux\)[\s\S]*kpatch-ts: post-patch callback[\s\S]*kpatch-ts: pre-unpatch callback[\s\S]*kpatch-ts: post-unpatch callback/,
    ],
  },
];

for (const c of CASES) {
  // A construct of one series only (runtime constants are 6.11+) has no patch for the other.
  const missing = !existsSync(join(PATCHES, `${c.patch}.patch`));
  const skip = missing ? `no ${c.patch}.patch for ${lab.series}: the construct is not in that kernel` : false;
  test(`kpatch-build ${c.patch}.patch: patched live, then rolled back`, { skip }, async () => {
    const r = await build(c.patch);
    const got = r.targets.flatMap((t) => t.funcs.map((f) => `${t.name}:${f.oldName}`)).sort();
    assert.deepEqual(got, [...c.funcs].sort());
    const mod = r.name;
    const commands = [...(c.setup ?? []), c.probe, ...load(mod), c.probe, ...unload(mod), c.probe];
    const g = await runGuest({ lab, files: [r.module, ...(c.files ?? [])], commands });
    const at = (i: number) => g.commands[(c.setup?.length ?? 0) + i]!;
    for (const cmd of g.commands.slice(0, -1)) {
      if (cmd.command !== c.probe) assert.equal(cmd.exitCode, 0, `${cmd.command}: ${cmd.output}`);
    }
    assert.match(at(0).output, c.old, "before loading");
    assert.match(at(3).output, c.new, "after loading");
    assert.match(at(7).output, c.unloaded ?? c.old, "after unloading");
    assert.match(g.kernelLog, new RegExp(`livepatch: '${kname(mod)}': unpatching complete`));
    for (const re of c.log ?? []) assert.match(g.kernelLog, re);
  });
}

test("kpatch-build module.patch: a module loaded after the patch is patched when it loads", async () => {
  const r = await build("module", { name: "livepatch-module-later" });
  const probe = "cat /sys/kernel/kobject_example/foo";
  const g = await runGuest({
    lab,
    files: [r.module, join(lab.buildDir, "samples", "kobject", "kobject-example.ko")],
    commands: [...load(r.name), "insmod kobject-example.ko", probe, ...unload(r.name), probe],
  });
  assert.equal(g.commands[3]!.output, "0 kpatched\n");
  assert.equal(g.commands[7]!.output, "0\n");
});

test("kpatch-build: a second patch replaces the first (atomic replace); with -R both stay", async () => {
  const first = await build("cmdline");
  const second = await build("version");
  const third = await build("version", { replace: false, name: "livepatch-version-r" });
  const probe = "cat /proc/cmdline /proc/version";
  const g = await runGuest({
    lab,
    files: [first.module, second.module, third.module],
    commands: [
      ...load(first.name),
      ...load(second.name),
      probe,
      "ls /sys/kernel/livepatch",
      `rmmod ${kname(first.name)}`,
      ...unload(second.name),
      ...load(first.name),
      ...load(third.name),
      probe,
      "ls /sys/kernel/livepatch",
    ],
  });
  const out = (i: number) => g.commands[i]!.output;
  assert.match(
    out(4),
    /rdinit=\/init\nLinux version[^\n]*\nkpatch-ts: version patched\n$/,
    "replaced: cmdline patch gone",
  );
  assert.equal(out(5).trim(), kname(second.name));
  assert.match(
    out(14),
    / kpatch-ts=live\nLinux version[^\n]*\nkpatch-ts: version patched\n$/,
    "-R: both active",
  );
  assert.deepEqual(out(15).trim().split(/\s+/).sort(), [kname(first.name), kname(third.name)].sort());
});

/** The files the patch touches, as no run has them patched (other runs may share the tree). */
const sourceDigest = (patch: string) => cleanTreeState(lab.srcDir, join(PATCHES, `${patch}.patch`));

for (const [patch, code] of [
  ["data-changed", "DIFF_DATA_CHANGED"],
  ["init-changed", "DIFF_INIT_CHANGED"],
  ["does-not-apply", "PATCH_FAILED"],
] as const) {
  test(`kpatch-build ${patch}.patch is refused with ${code}, the tree left clean, no module written`, async () => {
    const before = await sourceDigest(patch);
    await assert.rejects(build(patch), (e: Error & { code?: string }) => {
      assert.equal(e.code, code, e.message);
      return true;
    });
    assert.equal(await sourceDigest(patch), before);
    assert.throws(() => readFileSync(join(out, `livepatch-${patch}.ko`)));
  });
}
