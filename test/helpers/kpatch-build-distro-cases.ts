/**
 * The patches kpatch-build-distro.test.ts builds for a stock Debian kernel, with what each must
 * change and how the guest sees it. test/fixtures/patches/distro-<series>/ holds the patches
 * written for Debian's config (pr_debug, a tracepoint, a static call, a header, a module of the
 * image); the lab set of the same source version (test/fixtures/patches/<series>/) adds the rest.
 */
import { join } from "node:path";
import type { KernelSeries } from "../../src/lab/paths.js";

const FIXTURES = join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "patches");

export interface DistroCase {
  name: string;
  patch: string;
  /** target:function the module must patch (as kpatch-build prints them). */
  funcs: string[];
  probe: string;
  old: RegExp;
  new: RegExp;
  /** Image modules (paths below lib/modules/KVER/kernel, no compression suffix) the guest needs. */
  modules?: string[];
  setup?: string[];
  /** Commands while the patch is loaded, after the "after" probe. */
  during?: string[];
  teardown?: string[];
  log?: RegExp[];
  /** The output of the step that loads the target module while the patch is in. */
  loadedAfter?: RegExp;
}

const distro = (series: string, name: string) => join(FIXTURES, `distro-${series}`, `${name}.patch`);
const labPatch = (series: string, name: string) => join(FIXTURES, series, `${name}.patch`);

const BINFMT = "/proc/sys/fs/binfmt_misc";

function cases(series: string): DistroCase[] {
  return [
    {
      name: "cmdline-pr-debug",
      patch: distro(series, "cmdline-pr-debug"),
      funcs: ["vmlinux: cmdline_proc_show"],
      probe: "cat /proc/cmdline",
      old: /[^g]\n$/,
      new: / kpatch-ts=debug\n$/,
    },
    {
      name: "comm-tracepoint",
      patch: distro(series, "comm-tracepoint"),
      funcs: ["vmlinux: __set_task_comm"],
      // `; true`: busybox sh would exec the last command in place, and cat would read its own comm.
      probe: "sh -c 'echo kpts-x > /proc/$$/comm; cat /proc/$$/comm; true'",
      old: /^kpts-x\s*$/,
      new: /^kpts-patched\s*$/,
    },
    {
      name: "fd-static-call",
      patch: distro(series, "fd-static-call"),
      funcs: ["vmlinux: proc_readfd_common"],
      // ls's stderr is dropped: the shell holds the pipe's descriptors (3, 4) only while it
      // forks, and ls, listing them, may find them gone when it looks at each entry.
      probe: "sh -c 'exec 9</proc/version; ls /proc/$$/fd 2>/dev/null | grep -x 9 || echo hidden'",
      old: /^9\n$/,
      new: /^hidden\n$/,
    },
    {
      name: "loadavg-header",
      patch: distro(series, "loadavg-header"),
      funcs: ["vmlinux: loadavg_proc_show"],
      probe: "cat /proc/loadavg",
      old: /^(?!\d+\.07 \d+\.07 \d+\.07 )/,
      new: /^\d+\.07 \d+\.07 \d+\.07 /,
    },
    {
      // binfmt_misc ships in the image package: loaded before the patch (the probes around load
      // and unload), then, in `after`, loaded while the patch is in: the livepatch core patches
      // it as it loads. On 6.12 it is first unloaded and reloaded under the patch; 6.1's core
      // cannot apply a patch's relocations to a module a second time (it does not clear them
      // when the module goes: "Skipping invalid relocation target", the load is refused), so
      // there the patch is loaded anew before the module.
      name: "binfmt-module",
      patch: distro(series, "binfmt-module"),
      funcs: ["binfmt_misc: bm_status_read"],
      modules: ["fs/binfmt_misc.ko"],
      setup: ["insmod binfmt_misc.ko", `mount -t binfmt_misc none ${BINFMT}`],
      probe: `cat ${BINFMT}/status`,
      old: /^enabled\n$/,
      new: /^enabled kpatch-ts\n$/,
      ...(series === "6.12"
        ? {
            during: [
              `umount ${BINFMT} && rmmod binfmt_misc && insmod binfmt_misc.ko && mount -t binfmt_misc none ${BINFMT} && echo "@@loaded-after"; cat ${BINFMT}/status`,
            ],
            teardown: [`umount ${BINFMT}`, "rmmod binfmt_misc"],
          }
        : {
            teardown: [
              `umount ${BINFMT} && rmmod binfmt_misc`,
              "kpatch load livepatch-binfmt-module.ko",
              `insmod binfmt_misc.ko && mount -t binfmt_misc none ${BINFMT} && echo "@@loaded-after"; cat ${BINFMT}/status`,
              `umount ${BINFMT}`,
              "kpatch unload livepatch_binfmt_module",
              "rmmod binfmt_misc",
            ],
          }),
      loadedAfter: /^@@loaded-after\nenabled kpatch-ts\n$/,
    },
    {
      // task_cpus_allowed() is inlined into proc_pid_status(): the caller is what gets patched.
      name: "inline",
      patch: labPatch(series, "inline"),
      funcs: ["vmlinux: proc_pid_status"],
      probe: "grep Kpatch_ts /proc/self/status || true",
      old: /^$/,
      new: /^Kpatch_ts:\tinlined\n$/,
    },
    {
      name: "meminfo-inline",
      patch: labPatch(series, "meminfo-inline"),
      funcs: ["vmlinux: meminfo_proc_show"],
      probe: "grep MemTotal /proc/meminfo",
      old: /^MemTotal: +\d+ kB\n$/,
      new: /^MemTotal: +\d+ KiB\n$/,
    },
    {
      name: "version",
      patch: labPatch(series, "version"),
      funcs: ["vmlinux: version_proc_show"],
      probe: "cat /proc/version",
      old: /^Linux version [^\n]*\n$/,
      new: /\nkpatch-ts: version patched\n$/,
    },
    {
      name: "new-function",
      patch: labPatch(series, "new-function"),
      funcs: ["vmlinux: cmdline_proc_show"],
      probe: "cat /proc/cmdline",
      old: /[^w]\n$/,
      new: / extra=new-function\n$/,
    },
    {
      name: "new-global",
      patch: labPatch(series, "new-global"),
      funcs: ["vmlinux: cmdline_proc_show"],
      probe: "cat /proc/cmdline; cat /proc/cmdline",
      old: /^(?![^\n]* reads=)/,
      new: / reads=1\n.* reads=2\n$/,
    },
    {
      name: "static-local",
      patch: labPatch(series, "static-local"),
      funcs: ["vmlinux: version_proc_show"],
      probe: "cat /proc/version; cat /proc/version",
      old: /^Linux version [^\n]*\nLinux version [^\n]*\n$/,
      new: /^calls=1 Linux version [^\n]*\ncalls=2 Linux/,
    },
    {
      name: "shadow",
      patch: labPatch(series, "shadow"),
      funcs: ["vmlinux: cmdline_proc_show"],
      probe: "cat /proc/cmdline; cat /proc/cmdline",
      old: /^(?![^\n]* shadow_reads=)/,
      new: / shadow_reads=1\n.* shadow_reads=2\n$/,
    },
    {
      name: "callbacks",
      patch: labPatch(series, "callbacks"),
      funcs: ["vmlinux: version_proc_show"],
      probe: "cat /proc/version",
      old: /^Linux version/,
      new: /^callbacks Linux version/,
      log: [/kpatch-ts: pre-patch callback \(vmlinux\)[\s\S]*kpatch-ts: post-unpatch callback/],
    },
  ];
}

export const CASES: Record<KernelSeries, DistroCase[]> = { "6.12": cases("6.12"), "6.1": cases("6.1") };

/** A data change: refused with exit 2. */
export const REFUSED: Record<KernelSeries, { name: string; patch: string; file: string; message: RegExp }> = {
  "6.12": {
    name: "data-changed",
    patch: labPatch("6.12", "data-changed"),
    file: "kernel/panic.c",
    message: /panic_timeout.*DIFF_DATA_CHANGED/,
  },
  "6.1": {
    name: "data-changed",
    patch: labPatch("6.1", "data-changed"),
    file: "kernel/panic.c",
    message: /panic_timeout.*DIFF_DATA_CHANGED/,
  },
};

/** Another release of the same series, for the vermagic refusal (undefined: none to compare). */
export const OTHER_RELEASE: Record<KernelSeries, { kver: string; patch: string } | undefined> = {
  "6.12": { kver: "6.12.115+deb12-amd64", patch: labPatch("6.12", "cmdline") },
  "6.1": undefined,
};
