#!/usr/bin/env node
import { debianGuest } from "../lab/debian-guest.js";
import { buildDebianRootfs, findDebianRootfs, withRootDisk } from "../lab/debian-rootfs.js";
/**
 * kpatch-lab: the QEMU lab. A real livepatch-capable kernel built from Debian's source
 * package, booted under QEMU, where patches are tried before they touch a server.
 */
import { runDemo } from "../lab/demo.js";
import {
  type DistroLab,
  findDistroLab,
  isDistroLab,
  requireDistroLab,
  setupDistroLab,
} from "../lab/distro.js";
import { setupDistroSource } from "../lab/distro-source.js";
import { type GuestResult, runGuest } from "../lab/guest.js";
import { DEFAULT_SERIES, KERNEL_SERIES, type KernelSeries } from "../lab/paths.js";
import { findLab, type Lab, requireLab, setupLab } from "../lab/setup.js";
import { formatDuration, Progress } from "../util/progress.js";
import { checkUserFile } from "../util/user-file.js";
import { parseCommandLine } from "./args.js";
import { EXIT, runCli, UsageError } from "./main.js";

const USAGE = `Usage: kpatch-lab <command> [options]

The kpatch-ts lab: a small livepatch-capable Linux kernel, built from Debian's
linux-source package, booted under QEMU (KVM when it works, else TCG). Nothing is
ever loaded into this machine's own kernel.

Commands:
  setup [--kernel 6.12|6.1] [-j JOBS] [--no-install]
        Install the Debian packages the lab needs (as root), unpack the kernel
        source, configure it (tinyconfig + lab/config fragments), build it, and
        make the initramfs. Cached: a second run with nothing changed takes seconds.
  setup --distro 6.12|6.1 [--release KVER | --suite trixie] [--debian] [--source] [--no-install]
        Debian's own kernel instead, never built here: download the
        linux-image-*-amd64-unsigned and linux-headers packages at the installed
        linux-source version (--release KVER: exactly that packaged kernel, any
        flavour, e.g. 6.12.113+deb12-amd64 or 6.12.117+deb12-cloud-amd64), make
        an initramfs with the modules the guest needs, and build the kernel's
        livepatch-sample against the headers. --suite trixie: Debian 13's newest
        kernel of the series instead (its packages through a private apt state,
        the sample built with its gcc 14 in a build root). With
        --debian, also a root file system of the kernel's Debian release for it
        (Debian 12, or 13 with --suite trixie: debootstrap minbase, systemd, apt,
        the kernel's image package, that release's nodejs), an ext4 image
        booted with systemd as init (as root; cached), and the copies 'run
        --debian' boots on the kernels set up that use it (the series' lab
        kernel, a stock kernel of the other series) with their image package
        added. With
        --source, also that kernel's Debian source (linux-source-<series> at its
        version: the installed one, else downloaded) unpacked into the cache, which
        the livepatch selftests run from (cached, complete or absent).
  run [--kernel K | --distro S [--release KVER | --suite trixie]] [--debian] [--network] [--file PATH]... [--share-host] [--timeout SEC] [--json] -- COMMAND...
        Boot the lab kernel with the files (in /lab/files, the working directory),
        run each COMMAND (one shell command per argument) and print its output and
        exit status. Exit status: 0 when every command exited 0, 1 otherwise.
        --debian boots a copy of the Debian root file system with systemd (the
        commands run once the system is up, from /var/lib/kplab/run/files); with
        the lab kernel, the stock kernel's root file system of that series, with
        the lab kernel's image package (linux-image-<release>) added; a stock
        kernel with no root file system of its own (6.1) boots Debian 12's (made
        with stock 6.12) with its own image package added (either made as root
        on first use: dpkg -i in a chroot, cached);
        --network adds QEMU's user network (this machine is 10.0.2.2).
  demo [--distro S | --kernel K]
        Build a livepatch module from a source patch (examples/) with kpatch-build
        for Debian's stock kernel (default: --distro 6.12, set up with 'setup
        --distro 6.12') or the lab kernel (--kernel), boot that kernel, and patch
        it live with kpatch load / list / unload in the guest.
  info [--kernel K | --distro S [--release KVER | --suite trixie]] [--json]
        Where the lab is and what it was built from.

Options:
  --kernel K     the lab kernel of a series: 6.12 (default) or 6.1
  --distro S     Debian's stock kernel of a series: 6.12 or 6.1
  --release KVER with --distro: that packaged kernel (as uname -r prints it)
  --suite C      with --distro: the Debian release's kernel (trixie; default this machine's)
  -h, --help     this text

Environment:
  KPATCH_TS_CACHE   cache directory (default ~/.cache/kpatch-ts)
  KPATCH_LAB_ACCEL  tcg or kvm (default: tcg, since KVM guests fail on many hosts)

Exit status: 0 success, 1 failure (the message names the step), 2 usage error.
`;

interface KernelChoice {
  series: KernelSeries;
  distro: boolean;
  /** With --distro: exactly this packaged kernel (--release KVER). */
  kernelRelease?: string;
  /** With --distro: another Debian release's newest kernel (--suite trixie). */
  suite?: string;
}

/** --kernel K or --distro S [--release KVER], checked before anything is looked up. */
function kernelChoice(values: {
  kernel?: string | undefined;
  distro?: string | undefined;
  release?: string | undefined;
  suite?: string | undefined;
}): KernelChoice {
  if (values.kernel !== undefined && values.distro !== undefined)
    throw new UsageError("--kernel and --distro exclude each other");
  if (values.release !== undefined && values.distro === undefined)
    throw new UsageError("--release names a Debian kernel: it needs --distro SERIES");
  if (values.suite !== undefined && values.distro === undefined)
    throw new UsageError("--suite needs --distro");
  if (values.suite !== undefined && values.release !== undefined)
    throw new UsageError("--release names one kernel, --suite another release's newest: give one");
  return {
    series: series(values.distro ?? values.kernel),
    distro: values.distro !== undefined,
    ...(values.release !== undefined ? { kernelRelease: values.release } : {}),
    ...(values.suite !== undefined ? { suite: values.suite } : {}),
  };
}

/** The lab kernel or, with --distro, Debian's stock kernel of a series or release (set up). */
function guestKernel(choice: KernelChoice): Lab | DistroLab {
  return choice.distro
    ? requireDistroLab(choice.series, { kernelRelease: choice.kernelRelease, suite: choice.suite })
    : requireLab(choice.series);
}

/** The options that pick a kernel (kernelChoice reads them), for every command that boots one. */
const KERNEL_CHOICE_OPTIONS = {
  kernel: { type: "string" },
  distro: { type: "string" },
  release: { type: "string" },
  suite: { type: "string" },
} as const;

function series(value: string | undefined): KernelSeries {
  const s = value ?? DEFAULT_SERIES;
  if (!(KERNEL_SERIES as readonly string[]).includes(s)) throw new UsageError(`unknown kernel series '${s}'`);
  return s as KernelSeries;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(USAGE);
    return cmd ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS.get(cmd);
  if (!command) throw new UsageError(`unknown command '${cmd}'`);
  return await command(rest);
}

/** kpatch-lab setup: the lab kernel, or with --distro Debian's stock kernel (and with --debian its root file system). */
async function cmdSetup(rest: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    rest,
    {
      ...KERNEL_CHOICE_OPTIONS,
      debian: { type: "boolean" },
      source: { type: "boolean" },
      jobs: { type: "string", short: "j" },
      "no-install": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    "setup",
  );
  if (values.help) return help();
  noArguments("setup", positionals);
  const jobs = values.jobs === undefined ? undefined : count("setup", "--jobs", values.jobs);
  const choice = kernelChoice(values);
  const progress = new Progress();
  const started = performance.now();
  if (values.debian && !choice.distro) throw new UsageError("setup: --debian needs --distro");
  if (values.source && !choice.distro) throw new UsageError("setup: --source needs --distro");
  if (values.debian && choice.kernelRelease)
    throw new UsageError("setup: --debian is made for the series' default kernel, not --release");
  if (choice.distro) {
    const lab = await setupDistroLab({
      series: choice.series,
      ...(choice.kernelRelease ? { kernelRelease: choice.kernelRelease } : {}),
      ...(choice.suite ? { suite: choice.suite } : {}),
      progress,
      installPackages: !values["no-install"],
    });
    progress.note(
      `stock kernel ready in ${formatDuration(performance.now() - started)}: Linux ${lab.kernelRelease} (${lab.image} ${lab.sourceVersion})\n  kernel ${lab.bzImage}\n  headers ${lab.headersDir ?? "(none: no kbuild package)"}`,
    );
    if (values.debian) {
      const rootfs = await buildDebianRootfs(lab, progress);
      progress.note(
        `Debian root file system ready: ${rootfs.image} (${Math.round(rootfs.sizeBytes / 2 ** 20)} MiB)`,
      );
      for (const kernel of kernelsBootingRootfs(lab)) {
        const guest = await debianGuest(kernel, progress);
        progress.note(`Debian root file system for ${kernel.kernelRelease} ready: ${guest.rootfs.image}`);
      }
    }
    if (values.source) progress.note(`kernel source ready: ${await setupDistroSource(lab, progress)}`);
    return EXIT.ok;
  }
  const lab = await setupLab({
    series: choice.series,
    progress,
    installPackages: !values["no-install"],
    ...(jobs ? { jobs } : {}),
  });
  progress.note(
    `lab ready in ${formatDuration(performance.now() - started)}: Linux ${lab.kernelRelease}\n  kernel ${lab.bzImage}\n  build tree ${lab.buildDir}`,
  );
  return EXIT.ok;
}

/**
 * The kernels set up that boot the Debian root file system of `stock` with their own image
 * package added (src/lab/debian-guest.ts): the lab kernel of its series, the stock kernels of
 * the other series without one of their own. None for a --suite one's (Debian 13).
 */
function kernelsBootingRootfs(stock: DistroLab): (Lab | DistroLab)[] {
  if (stock.suite) return [];
  const lab = findLab(stock.series);
  const others = KERNEL_SERIES.filter((s) => s !== stock.series).map((s) => findDistroLab(s));
  return [
    ...(lab ? [lab] : []),
    ...others.filter((d): d is DistroLab => d !== undefined && !findDebianRootfs(d)),
  ];
}

/** kpatch-lab run: commands in a guest of the lab or stock kernel, their output and exit statuses. */
async function cmdRun(rest: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    rest,
    {
      ...KERNEL_CHOICE_OPTIONS,
      debian: { type: "boolean" },
      network: { type: "boolean" },
      file: { type: "string", multiple: true },
      "share-host": { type: "boolean" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    "run",
  );
  if (values.help) return help();
  if (positionals.length === 0) throw new UsageError("run: no command given (put commands after --)");
  const timeout = values.timeout === undefined ? undefined : count("run", "--timeout", values.timeout);
  const choice = kernelChoice(values);
  for (const f of values.file ?? []) checkUserFile(f, "LAB_FILE");
  if (values.debian && choice.kernelRelease)
    throw new UsageError("run: --debian boots the series' default kernel, not --release");
  const lab = guestKernel(choice);
  const debian = values.debian ? await debianGuest(lab) : undefined;
  const result = await withRootDisk(debian, (rootDisk) =>
    runGuest({
      lab,
      files: values.file ?? [],
      commands: positionals,
      shareHost: values["share-host"] ?? false,
      network: values.network ?? false,
      ...(rootDisk ? { rootDisk } : {}),
      ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
    }),
  );
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else printGuestRun(result);
  return result.commands.every((c) => c.exitCode === 0) ? EXIT.ok : EXIT.error;
}

/** Each command as a shell would show it, its output, a non-zero status; the guest's time on stderr. */
function printGuestRun(result: GuestResult): void {
  for (const c of result.commands) {
    process.stdout.write(`$ ${c.command}\n${c.output}${c.output.endsWith("\n") || !c.output ? "" : "\n"}`);
    if (c.exitCode !== 0) process.stdout.write(`[exit status ${c.exitCode}]\n`);
  }
  process.stderr.write(`guest ran in ${formatDuration(result.wallMs)} (${result.accel})\n`);
}

/** kpatch-lab demo: the story on the kernel a user runs (Debian's stock one), or --kernel the lab's. */
async function cmdDemo(rest: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    rest,
    { kernel: { type: "string" }, distro: { type: "string" }, help: { type: "boolean", short: "h" } },
    "demo",
  );
  if (values.help) return help();
  noArguments("demo", positionals);
  // The story a user cares about: the kernel they run. --kernel picks the lab kernel.
  const choice =
    values.kernel === undefined
      ? kernelChoice({ distro: values.distro ?? DEFAULT_SERIES })
      : kernelChoice(values);
  return (await runDemo(choice)) ? EXIT.ok : EXIT.error;
}

/** kpatch-lab info: what is set up for a series. */
async function cmdInfo(rest: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    rest,
    {
      ...KERNEL_CHOICE_OPTIONS,
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    "info",
  );
  if (values.help) return help();
  noArguments("info", positionals);
  const lab = guestKernel(kernelChoice(values));
  if (values.json) process.stdout.write(`${JSON.stringify(lab, null, 2)}\n`);
  else process.stdout.write(formatInfo(lab));
  return EXIT.ok;
}

const COMMANDS = new Map<string, (rest: string[]) => Promise<number>>([
  ["setup", cmdSetup],
  ["run", cmdRun],
  ["demo", cmdDemo],
  ["info", cmdInfo],
]);

function noArguments(cmd: string, positionals: string[]): void {
  if (positionals.length) throw new UsageError(`${cmd}: unexpected argument '${positionals[0]}'`);
}

/** A whole number above zero given to an option (--jobs, --timeout). */
function count(cmd: string, option: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new UsageError(`${cmd}: ${option} needs a whole number above 0, not '${value}'`);
  return n;
}

function formatInfo(lab: Lab | DistroLab): string {
  const rows: [string, string][] = isDistroLab(lab)
    ? [
        ["series", `${lab.series} (Debian's stock kernel)`],
        ["kernel release", lab.kernelRelease],
        ["image", `${lab.image} ${lab.sourceVersion}`],
        ["headers", `${lab.headers} ${lab.sourceVersion}`],
        ["kernel", lab.bzImage],
        ["config", lab.config],
        ["headers tree", lab.headersDir ?? "absent"],
        ["initramfs", lab.initramfs],
        ["guest modules", lab.modules.map((m) => m.replace(/^.*\//, "")).join(" ")],
        ["sample", lab.sampleModule ?? `absent: ${lab.sampleAbsent}`],
      ]
    : [
        ["series", lab.series],
        ["kernel release", lab.kernelRelease],
        ["source", `linux-source-${lab.series} ${lab.sourceVersion}`],
        ["compiler", lab.compiler],
        ["kernel", lab.bzImage],
        ["build tree", lab.buildDir],
        ["initramfs", lab.initramfs],
      ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(16)}${v}\n`).join("");
}

function help(): number {
  process.stdout.write(USAGE);
  return EXIT.ok;
}

runCli("kpatch-lab", main);
