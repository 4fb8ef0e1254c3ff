/**
 * The kernel's own livepatch selftests (tools/testing/selftests/livepatch of the lab's source)
 * in the lab guest, the scripts copied unchanged. What they need and how the guest gives it:
 *
 * - bash, and the tools whose output the scripts compare or whose options busybox lacks:
 *   kmod's insmod/rmmod/modinfo (insmod's error text is part of the expected kernel log),
 *   coreutils' date (--rfc-3339=ns) and stat (called as /bin/stat --format), procps' sysctl
 *   (--values), getconf, diffutils' diff (--label, for a failure's report): this machine's
 *   programs with their loader and libraries (src/lab/host-programs.ts); /dev/fd for bash's
 *   process substitution.
 * - The test modules, built out of tree against the kernel's kbuild tree (src/lab/lab-modules.ts).
 *   Since 6.2 they are test_modules/test_klp_*.c, which the scripts insmod from ./test_modules;
 *   before, lib/livepatch's (in-tree with CONFIG_TEST_LIVEPATCH=m, which kernels such as
 *   Debian's leave off: built here with that option on the make command line), which the
 *   scripts modprobe by name: they go to /lib/modules/$(uname -r)/extra, indexed by depmod
 *   (coreutils' mktemp and comm too, for 6.1's dmesg bookkeeping). test_klp-call_getpid
 *   (test-syscall.sh) is compiled here with gcc, static.
 * - KDIR: functions.sh skips everything unless $KDIR (default /lib/modules/$(uname -r)/build)
 *   is a directory, because kselftest builds the modules there; ours are built already, so KDIR
 *   names their directory in the guest.
 * - Dynamic debug for kernel/livepatch (its pr_debug lines are in the expected logs): the
 *   scripts write set_dynamic_debug's queries to /sys/kernel/debug/dynamic_debug/control, so
 *   debugfs is mounted there when the kernel has it (Debian's, and the lab's); on a kernel
 *   without CONFIG_DEBUG_FS the same queries, read from functions.sh, go on the kernel command
 *   line (dyndbg=) and the scripts' own writes fail harmlessly (an error on stderr).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig, readConfig } from "../kpatch-build/kernel-config.js";
import { KpatchError } from "../util/errors.js";
import { execCheck, shellQuote } from "../util/exec.js";
import { type GuestProgram, hostProgramsInGuest } from "./host-programs.js";
import type { GuestFile } from "./initramfs.js";
import { configMismatches } from "./kernel-config.js";

/** The selftests' directory in a kernel source tree. */
export const SELFTESTS_DIR = join("tools", "testing", "selftests", "livepatch");

/** Where the selftests go in the guest (below the runner's /lab/files). */
const GUEST_DIR = "/lab/files/livepatch";

export interface LivepatchSelftests {
  dir: string;
  /** The test scripts, in the Makefile's order (TEST_PROGS). */
  scripts: string[];
  /** Files the scripts read (TEST_PROGS_EXTENDED, TEST_FILES: functions.sh, settings). */
  support: string[];
  /** C programs the scripts run (TEST_GEN_FILES, each from <name>.c). */
  programs: string[];
  /** The test modules (test_modules/Makefile's obj-m, or lib/livepatch's), without .ko. */
  modules: string[];
  /** Their sources, and what make needs on its command line to build them out of tree. */
  modulesSource: string;
  makeArgs: string[];
  /** How the scripts load them: insmod test_modules/NAME.ko, or modprobe NAME. */
  load: "insmod" | "modprobe";
  /** The kernel options the selftests' `config` file asks for. */
  config: Map<string, string>;
  /** set_dynamic_debug's queries from functions.sh. */
  dynamicDebug: string[];
}

/** A make variable's words (`NAME := a b \` continued lines, `+=` appended). */
function makeVariable(text: string, name: string): string[] {
  const joined = text.replace(/\\\n/g, " ");
  const words: string[] = [];
  for (const m of joined.matchAll(new RegExp(`^${name}\\s*(?::=|\\+=|=)(.*)$`, "gm"))) {
    words.push(...m[1]!.trim().split(/\s+/).filter(Boolean));
  }
  return words;
}

/** The test modules' sources: test_modules/ (6.2 and later) or lib/livepatch (before). */
function testModules(srcDir: string, dir: string) {
  const own = join(dir, "test_modules");
  if (existsSync(join(own, "Makefile"))) {
    const modules = makeVariable(readFileSync(join(own, "Makefile"), "utf8"), "obj-m");
    return { modulesSource: own, modules, makeArgs: [], load: "insmod" as const };
  }
  const lib = join(srcDir, "lib", "livepatch");
  if (!existsSync(join(lib, "Makefile"))) return undefined;
  const modules = makeVariable(
    readFileSync(join(lib, "Makefile"), "utf8"),
    "obj-\\$\\(CONFIG_TEST_LIVEPATCH\\)",
  );
  return { modulesSource: lib, modules, makeArgs: ["CONFIG_TEST_LIVEPATCH=m"], load: "modprobe" as const };
}

/** The livepatch selftests of a kernel source tree, or a reason why there are none. */
export function readSelftests(srcDir: string): LivepatchSelftests | { missing: string } {
  const dir = join(srcDir, SELFTESTS_DIR);
  if (!existsSync(join(dir, "Makefile"))) return { missing: `${dir} does not exist` };
  const mods = testModules(srcDir, dir);
  if (!mods) return { missing: `${dir} has no test_modules/ and ${srcDir} no lib/livepatch/` };
  const makefile = readFileSync(join(dir, "Makefile"), "utf8");
  const functions = readFileSync(join(dir, "functions.sh"), "utf8");
  const heredoc = /function set_dynamic_debug\(\)\s*\{\s*[^\n]*<<-EOF[^\n]*\n([\s\S]*?)\n\s*EOF/.exec(
    functions,
  );
  if (!heredoc) {
    throw new KpatchError(
      "LAB_FILE",
      `Cannot read set_dynamic_debug's queries from ${join(dir, "functions.sh")}`,
    );
  }
  // CONFIG_TEST_LIVEPATCH (before 6.2) builds the modules in-tree: ours are built out of tree
  const config = parseConfig(readFileSync(join(dir, "config"), "utf8"));
  config.delete("CONFIG_TEST_LIVEPATCH");
  const suite: LivepatchSelftests = {
    dir,
    ...mods,
    modules: mods.modules.map((o) => o.replace(/\.o$/, "")),
    scripts: makeVariable(makefile, "TEST_PROGS"),
    support: [...makeVariable(makefile, "TEST_PROGS_EXTENDED"), ...makeVariable(makefile, "TEST_FILES")],
    programs: makeVariable(makefile, "TEST_GEN_FILES"),
    config,
    dynamicDebug: heredoc[1]!
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean),
  };
  if (!suite.scripts.length || !suite.modules.length) {
    throw new KpatchError("LAB_FILE", `Cannot find the test scripts and modules in ${dir}'s Makefiles`);
  }
  return suite;
}

/**
 * Options the scripts need beyond the selftests' config file: setup_config sets the
 * kernel.ftrace_enabled sysctl (FUNCTION_TRACER, PROC_SYSCTL) and every script rmmods.
 */
const HARNESS_CONFIG = parseConfig(
  ["CONFIG_FUNCTION_TRACER=y", "CONFIG_PROC_SYSCTL=y", "CONFIG_MODULE_UNLOAD=y"].join("\n"),
);

/** Why no script can run on a kernel with this .config, or undefined. */
export function configSkipReason(suite: LivepatchSelftests, labConfig: string): string | undefined {
  const config = readConfig(labConfig);
  const lacking = [...configMismatches(suite.config, config), ...configMismatches(HARNESS_CONFIG, config)];
  if (!lacking.length) return undefined;
  return `the lab kernel lacks ${lacking.map((m) => `${m.option}=${m.wanted}`).join(", ")} (${labConfig})`;
}

/** Where the host's tools go in the guest: on PATH before busybox's /bin (see lab/initramfs/init). */
const TOOLS = "/usr/local/bin";

/** This machine's programs the scripts run, and where they go in the guest. */
const PROGRAMS: readonly (GuestProgram & { pkg: string })[] = [
  { host: "/usr/bin/bash", guest: "/bin/bash", pkg: "bash" },
  { host: "/usr/bin/stat", guest: "/bin/stat", pkg: "coreutils" },
  { host: "/usr/bin/date", guest: `${TOOLS}/date`, pkg: "coreutils" },
  { host: "/usr/bin/mktemp", guest: `${TOOLS}/mktemp`, pkg: "coreutils" },
  { host: "/usr/bin/comm", guest: `${TOOLS}/comm`, pkg: "coreutils" },
  { host: "/usr/sbin/sysctl", guest: `${TOOLS}/sysctl`, pkg: "procps" },
  { host: "/usr/bin/getconf", guest: `${TOOLS}/getconf`, pkg: "libc-bin" },
  { host: "/usr/bin/diff", guest: `${TOOLS}/diff`, pkg: "diffutils" },
  {
    host: "/usr/bin/kmod",
    guest: `${TOOLS}/kmod`,
    links: ["insmod", "rmmod", "modinfo", "modprobe", "depmod"],
    pkg: "kmod",
  },
];

export interface SelftestRun {
  files: GuestFile[];
  /** The first command: installs the programs. */
  setup: string;
  /** One command per script, in `scripts` order. */
  commands: string[];
  /** The kernel command line's dyndbg= for set_dynamic_debug's queries, when there is no debugfs. */
  append?: string;
}

/** Marks the guest uptime around a script: "kplab-selftest-uptime START END". */
const UPTIME_LINE = /^kplab-selftest-uptime (\S+) (\S+)\n/m;

/**
 * The files and commands of one guest run of `scripts`: the selftests' files from the lab's
 * source, the modules from `modulesDir`, the programs from `programsDir`.
 */
export async function selftestRun(options: {
  suite: LivepatchSelftests;
  scripts: readonly string[];
  modulesDir: string;
  programsDir: string;
  /** The guest kernel's .config. */
  kernelConfig: string;
}): Promise<SelftestRun> {
  const { suite, modulesDir, programsDir } = options;
  for (const p of PROGRAMS) {
    if (!existsSync(p.host)) {
      throw new KpatchError(
        "LAB_FILE",
        `Cannot run the livepatch selftests: ${p.host} is missing (install ${p.pkg})`,
      );
    }
  }
  const host = await hostProgramsInGuest(PROGRAMS);
  const files: GuestFile[] = [
    ...host.files,
    ...[...suite.support, ...suite.scripts].map((f) => ({
      name: `livepatch/${f}`,
      path: join(suite.dir, f),
    })),
    ...suite.programs.map((f) => ({ name: `livepatch/${f}`, path: join(programsDir, f) })),
    ...suite.modules.map((m) => ({
      name: `livepatch/test_modules/${m}.ko`,
      path: join(modulesDir, `${m}.ko`),
      mode: 0o644,
    })),
  ];
  const uptime = "$(cut -d' ' -f1 /proc/uptime)";
  const commands = options.scripts.map((s) =>
    [
      `cd ${GUEST_DIR} || exit 1`,
      `start=${uptime}`,
      // into a file, shown afterwards: the console is also the kernel's, and test_klp_state
      // raises console_loglevel (its "system state"), so kernel lines would cut into the output
      `KDIR=${GUEST_DIR}/test_modules ./${shellQuote(s)} >/tmp/selftest.out 2>&1`,
      "rc=$?",
      `end=${uptime}`,
      "cat /tmp/selftest.out",
      `echo "kplab-selftest-uptime $start $end"`,
      "exit $rc",
    ].join("\n"),
  );
  const debugfs = readConfig(options.kernelConfig).get("CONFIG_DEBUG_FS") === "y";
  const dyndbg = suite.dynamicDebug.join("; ");
  if (dyndbg.includes('"'))
    throw new KpatchError("LAB_FILE", `Cannot pass dyndbg=${dyndbg} on the command line`);
  return {
    files,
    // dmesg -n 1: no kernel message on the console (the scripts and the runner read the log
    // with dmesg)
    setup: [
      host.setup,
      "ln -sfn /proc/self/fd /dev/fd",
      ...(suite.load === "modprobe"
        ? [
            'extra="/lib/modules/$(uname -r)/extra"',
            'mkdir -p "$extra"',
            `cp ${GUEST_DIR}/test_modules/*.ko "$extra"/`,
            // by its path: busybox sh runs its own applets (depmod) before looking at PATH
            `${TOOLS}/depmod`,
          ]
        : []),
      ...(debugfs ? ["mount -t debugfs debugfs /sys/kernel/debug"] : []),
      "dmesg -n 1",
    ].join(" && "),
    commands,
    ...(debugfs ? {} : { append: `dyndbg="${dyndbg}"` }),
  };
}

/** kselftest's exit status for "cannot run here" (functions.sh's ksft_skip). */
const KSFT_SKIP = 4;

export interface ScriptOutcome {
  verdict: "pass" | "fail" | "skip";
  /** Why it failed or skipped. */
  reason?: string;
  /** Its "TEST: name ... ok" lines. */
  checks: string[];
  /** The output without the runner's uptime line. */
  output: string;
  /** Seconds it ran (guest uptime). */
  seconds?: number;
}

/**
 * What a script's exit status and output say: it passes when it exits 0 having run at least one
 * check and every check says "ok"; exit 4 is kselftest's skip (its "SKIP: why" line the reason).
 */
export function scriptOutcome(exitCode: number, raw: string): ScriptOutcome {
  const m = UPTIME_LINE.exec(raw);
  const output = m ? raw.replace(UPTIME_LINE, "") : raw;
  const timed = m ? { seconds: Number(m[2]) - Number(m[1]) } : {};
  const checks = output.split("\n").filter((l) => l.startsWith("TEST: "));
  const base = { checks, output, ...timed };
  if (exitCode === KSFT_SKIP) {
    // the SKIP line may follow "TEST: name ... " on the same line
    const why = /SKIP: (.*)$/m.exec(output)?.[1] ?? output.trim().split("\n").at(-1) ?? "no reason given";
    return { verdict: "skip", reason: `the script skips itself: ${why}`, ...base };
  }
  const notOk = checks.filter((l) => !l.endsWith(" ... ok"));
  const reason =
    exitCode !== 0
      ? `exit status ${exitCode}`
      : checks.length === 0
        ? "it ran no check"
        : notOk.length
          ? `checks not ok: ${notOk.join("; ")}`
          : undefined;
  return reason ? { verdict: "fail", reason, ...base } : { verdict: "pass", ...base };
}

/** Compiles the selftests' C programs (test_klp-call_getpid) into `outDir`, static: the guest has no libc of its own. */
export async function buildSelftestPrograms(suite: LivepatchSelftests, outDir: string): Promise<void> {
  for (const p of suite.programs) {
    await execCheck("gcc", ["-O2", "-Wall", "-static", "-o", join(outDir, p), join(suite.dir, `${p}.c`)], {
      what: `gcc ${p}.c`,
    });
  }
}
