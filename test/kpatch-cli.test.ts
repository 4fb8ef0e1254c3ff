/**
 * The kpatch command in the lab, the CLI running inside the guest: load, list (and --json),
 * info and unload of the kernel's livepatch sample; refusals with clear errors and non-zero
 * exits (not root, not a livepatch module, another kernel's vermagic, already loaded, not
 * loaded, usage); atomic replace and unload --all. One boot for all of it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { GuestCommandResult, GuestResult } from "../src/lab/guest.js";
import { HOST_MOUNT, hostNode } from "../src/lab/guest-node.js";
import {
  asNobody,
  lab,
  runKpatchSteps,
  sampleModule,
  testModules,
  withOtherVermagic,
  withSympos,
} from "./helpers/kpatch-fixtures.js";

const ORIGINAL = /console=ttyS0 .*kplab\.share=host/;
const PATCHED = "this has been live patched";

const STEPS = [
  { name: "version", command: "kpatch version" },
  { name: "help", command: "kpatch help && kpatch load --help && kpatch list -h" },
  { name: "list-empty", command: "kpatch list --json" },
  { name: "load", command: "kpatch load livepatch-sample.ko" },
  { name: "cmdline-patched", command: "cat /proc/cmdline" },
  { name: "list", command: "kpatch list" },
  { name: "list-json", command: "kpatch list --json" },
  { name: "info-file", command: "kpatch info livepatch-sample.ko" },
  { name: "info-json", command: "kpatch info --json livepatch-sample.ko" },
  { name: "info-loaded", command: "kpatch info livepatch_sample" },
  { name: "load-again", command: "kpatch load livepatch-sample.ko" },
  { name: "nobody-list", command: asNobody("kpatch list") },
  { name: "nobody-unload", command: asNobody("kpatch unload livepatch_sample") },
  { name: "nobody-load", command: asNobody("kpatch load kpatch-info-patch.ko") },
  { name: "unload", command: "kpatch unload livepatch-sample.ko" },
  { name: "cmdline-original", command: "cat /proc/cmdline" },
  { name: "unload-absent", command: "kpatch unload livepatch_sample" },
  { name: "not-livepatch", command: "kpatch load kobject-example.ko" },
  { name: "not-livepatch-left", command: "grep -c '^kobject_example ' /proc/modules || true" },
  { name: "vermagic", command: "kpatch load livepatch-sample-other.ko" },
  { name: "run-pre", command: "kpatch load livepatch-sample-sympos.ko" },
  { name: "run-pre-left", command: "grep -c '^livepatch_sample ' /proc/modules || true" },
  { name: "signal-idle", command: "kpatch signal" },
  // A file named like an option is a file: insmod must not read it as -f (force). Debian's
  // insmod (kmod, run from the host) parses options where busybox's does not.
  {
    name: "option-like-file",
    command:
      "mkdir -p /usr/local/sbin && cp kmod-insmod /usr/local/sbin/insmod && chmod 755 /usr/local/sbin/insmod && cp livepatch-sample.ko ./-f.ko && PATH=/usr/local/sbin:$PATH kpatch load -- -f.ko && kpatch unload livepatch_sample",
  },
  {
    name: "replace",
    command:
      "kpatch load livepatch-sample.ko && kpatch load kpatch-info-patch.ko && kpatch list && cat /proc/version /proc/cmdline",
  },
  { name: "unload-all", command: "kpatch unload --all" },
  { name: "clean", command: "ls /sys/kernel/livepatch | wc -l; cut -d' ' -f1 /proc/modules" },
  { name: "usage", command: "kpatch frobnicate" },
  { name: "usage-load", command: "kpatch load" },
] as const;

type Name = (typeof STEPS)[number]["name"];

/** A guest script running the host's kmod as insmod through the host's loader (/host). */
async function kmodInsmodScript(): Promise<string> {
  const { loader } = await hostNode();
  const kmod = realpathSync("/usr/bin/kmod");
  return `#!/bin/sh\nexec ${HOST_MOUNT}${loader} --argv0 insmod --library-path ${HOST_MOUNT}${dirname(loader)} ${HOST_MOUNT}${kmod} "$@"\n`;
}

describe("kpatch in the lab guest", () => {
  let result: GuestResult;
  let step: (name: Name) => GuestCommandResult;
  let otherRelease: string;
  let other = "";

  after(() => {
    if (other) rmSync(dirname(other), { recursive: true, force: true });
  });

  before(async () => {
    const modules = await testModules();
    other = join(mkdtempSync(join(tmpdir(), "kpatch-cli-")), "livepatch-sample-other.ko");
    otherRelease = withOtherVermagic(sampleModule("livepatch", "livepatch-sample"), other).release;
    const sympos = join(dirname(other), "livepatch-sample-sympos.ko");
    withSympos(sampleModule("livepatch", "livepatch-sample"), sympos, 3);
    const kmodInsmod = join(dirname(other), "kmod-insmod");
    writeFileSync(kmodInsmod, await kmodInsmodScript());
    const run = await runKpatchSteps(STEPS, {
      files: [
        sampleModule("livepatch", "livepatch-sample"),
        sampleModule("kobject", "kobject-example"),
        other,
        sympos,
        kmodInsmod,
        modules["kpatch-info-patch"],
      ],
    });
    result = run.result;
    step = run.step;
  });

  const ok = (name: Name, re?: RegExp) => {
    const r = step(name);
    assert.equal(r.exitCode, 0, `${name}: exit ${r.exitCode}:\n${r.output}`);
    if (re) assert.match(r.output, re);
    return r.output;
  };
  const fails = (name: Name, exit: number, re: RegExp) => {
    const r = step(name);
    assert.equal(r.exitCode, exit, `${name}: exit ${r.exitCode}:\n${r.output}`);
    assert.match(r.output, re);
    assert.doesNotMatch(r.output, /internal error|at .*\.js:\d+/, "no JavaScript stack for a refusal");
  };

  it("runs in the guest: version and help for every verb", (t) => {
    ok("version", /^kpatch \(kpatch-ts\) \d+\.\d+\.\d+/);
    ok("help", /Usage: kpatch <command>[\s\S]*Usage: kpatch load[\s\S]*Usage: kpatch list/);
    t.diagnostic(`guest run ${Math.round(result.wallMs)} ms (${result.accel}), ${STEPS.length} steps`);
  });

  it("load: livepatch-sample patches /proc/cmdline and the transition finishes", () => {
    assert.deepEqual(JSON.parse(ok("list-empty")).loaded, []);
    // The kernel's sample carries no run-pre record: kpatch says so, on one line, and loads it.
    ok(
      "load",
      /^kpatch: livepatch-sample\.ko: no run-pre record: code not compared[^\n]*\nloaded livepatch_sample \(transition \d+\.\d s\)/,
    );
    assert.equal(ok("cmdline-patched").trim(), PATCHED);
    assert.match(result.kernelLog, /livepatch: enabling patch 'livepatch_sample'/);
  });

  it("list: the patch, its state, its target object and function; --json the same", () => {
    ok("list", /Loaded patch modules:\n {2}livepatch_sample \[enabled\]\n {4}vmlinux: cmdline_proc_show\n/);
    const json = JSON.parse(ok("list-json"));
    assert.equal(json.kernel, lab.kernelRelease);
    assert.equal(json.livepatch, true);
    assert.deepEqual(json.loaded, [
      {
        name: "livepatch_sample",
        enabled: true,
        transition: false,
        replace: false,
        objects: [{ name: "vmlinux", patched: true, functions: [{ name: "cmdline_proc_show", sympos: 1 }] }],
      },
    ]);
    assert.deepEqual(json.installed, []);
  });

  it("info: what the module patches from its own metadata, its modinfo, and its state", () => {
    const out = ok("info-file");
    assert.match(out, /^livepatch_sample \(livepatch-sample\.ko\)/);
    assert.match(out, /livepatch module: yes/);
    assert.match(out, new RegExp(`built for: +${lab.kernelRelease.replace(/\./g, "\\.")} SMP`));
    assert.match(out, /loaded: +yes, enabled/);
    assert.match(out, /patches:\n {4}vmlinux:\n {6}cmdline_proc_show -> livepatch_cmdline_proc_show\n/);
    assert.match(out, /modinfo:\n[\s\S]*livepatch: +Y/);
    const json = JSON.parse(ok("info-json"));
    assert.deepEqual(json.patch, {
      objects: [
        {
          name: "vmlinux",
          functions: [{ name: "cmdline_proc_show", sympos: 0, newFunction: "livepatch_cmdline_proc_show" }],
          callbacks: {},
        },
      ],
      replace: false,
      states: [],
    });
    assert.equal(json.modinfo.livepatch, "Y");
    ok(
      "info-loaded",
      /livepatch_sample\n[\s\S]*patches \(from the running kernel\):\n {6}vmlinux: cmdline_proc_show/,
    );
  });

  it("refuses: already loaded, and not root (as user nobody)", () => {
    fails(
      "load-again",
      1,
      /Cannot load livepatch_sample: it is already loaded and enabled \[KPATCH_ALREADY_LOADED\]/,
    );
    ok("nobody-list", /livepatch_sample \[enabled\]/);
    fails(
      "nobody-unload",
      1,
      /Cannot unload livepatch_sample: not root \(uid 65534\); run it as root \[KPATCH_NOT_ROOT\]/,
    );
    fails(
      "nobody-load",
      1,
      /Cannot load kpatch-info-patch\.ko: not root \(uid 65534\); run it as root \[KPATCH_NOT_ROOT\]/,
    );
  });

  it("unload: disables, waits, removes the module; /proc/cmdline is the original again", () => {
    ok("unload", /^unloaded livepatch_sample \(transition \d+\.\d s\)/);
    ok("cmdline-original", ORIGINAL);
    assert.match(result.kernelLog, /livepatch: 'livepatch_sample': unpatching complete/);
    fails(
      "unload-absent",
      1,
      /Cannot unload livepatch_sample: no such patch is loaded \[KPATCH_NOT_LOADED\]/,
    );
  });

  it("refuses a module that is not a livepatch module, and loads nothing", () => {
    fails(
      "not-livepatch",
      1,
      /kobject-example\.ko: error: Cannot use kobject_example: not a livepatch module \(its \.modinfo has no livepatch=Y\) \[KPATCH_NOT_LIVEPATCH\]/,
    );
    assert.equal(ok("not-livepatch-left").trim(), "0");
  });

  it("refuses a module built for another kernel (vermagic), before insmod would", () => {
    fails(
      "vermagic",
      1,
      new RegExp(
        `Cannot use livepatch_sample: it was built for kernel ${otherRelease.replace(/\./g, "\\.")} \\(vermagic "[^"]+"\\), not for ${lab.kernelRelease.replace(/\./g, "\\.")} \\[KPATCH_VERMAGIC\\]`,
      ),
    );
  });

  it("refuses a module whose function is not where the livepatch core looks (run-pre), before insmod", () => {
    fails("run-pre", 4, /vmlinux: cmdline_proc_show,3: the running kernel has only 1 function of that name/);
    assert.match(step("run-pre").output, /\[KPATCH_RUNPRE_MISMATCH\]/);
    assert.equal(step("run-pre-left").output.trim(), "0");
  });

  it("signal: says so when no transition runs", () => {
    ok("signal-idle", /^no patch is in transition/);
  });

  it("load -- -f.ko: a file named like an option is loaded as a file, not handed to insmod as -f", () => {
    ok("option-like-file", /\nloaded livepatch_sample \(transition [\d.]+ s\)\nunloaded livepatch_sample/);
  });

  it("atomic replace: a replace patch takes over, unload --all removes both, newest first", () => {
    const out = ok("replace");
    assert.match(out, /loaded livepatch_sample/);
    assert.match(out, /loaded kpatch_info_patch/);
    assert.match(
      out,
      /Loaded patch modules:\n {2}kpatch_info_patch \[enabled, atomic replace\]\n {4}kpatch_stall_target \(not loaded yet\): kpatch_stall_loop\n {4}vmlinux: cmdline_proc_show version_proc_show\n {2}livepatch_sample \[replaced; the module is still loaded: 'kpatch unload livepatch_sample' removes it\]\n\n/,
    );
    assert.match(out, /kpatch-info-patch version\nkpatch-info-patch was here\n/);
    ok(
      "unload-all",
      /^unloaded kpatch_info_patch .*\nremoved module livepatch_sample \(its patch was already replaced or disabled\)\n/,
    );
    assert.equal(ok("clean").trim(), "0");
  });

  it("usage errors exit 2 with a hint", () => {
    fails("usage", 2, /kpatch: unknown command 'frobnicate'\nTry 'kpatch --help'/);
    fails("usage-load", 2, /kpatch: load: no module given \(or --all\)/);
  });
});
