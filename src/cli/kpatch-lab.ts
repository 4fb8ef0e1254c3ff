#!/usr/bin/env node
/**
 * kpatch-lab: the QEMU lab. A real livepatch-capable kernel built from Debian's source
 * package, booted under QEMU, where patches are tried before they touch a server.
 */
import { runDemo } from "../lab/demo.js";
import { runGuest } from "../lab/guest.js";
import { DEFAULT_SERIES, KERNEL_SERIES, type KernelSeries } from "../lab/paths.js";
import { requireLab, setupLab } from "../lab/setup.js";
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
  run [--kernel K] [--file PATH]... [--share-host] [--timeout SEC] [--json] -- COMMAND...
        Boot the lab kernel with the files (in /lab/files, the working directory),
        run each COMMAND (one shell command per argument) and print its output and
        exit status. Exit status: 0 when every command exited 0, 1 otherwise.
  demo [--kernel K]
        Patch the running lab kernel live with the kernel's livepatch sample, show
        /proc/cmdline change, and roll it back.
  info [--kernel K] [--json]
        Where the lab is and what it was built from.

Options:
  --kernel K     kernel series: 6.12 (default) or 6.1
  -h, --help     this text

Environment:
  KPATCH_TS_CACHE   cache directory (default ~/.cache/kpatch-ts)
  KPATCH_LAB_ACCEL  tcg or kvm (default: tcg, since KVM guests fail on many hosts)

Exit status: 0 success, 1 failure (the message names the step), 2 usage error.
`;

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
  switch (cmd) {
    case "setup": {
      const { values, positionals } = parseCommandLine(
        rest,
        {
          kernel: { type: "string" },
          jobs: { type: "string", short: "j" },
          "no-install": { type: "boolean" },
          help: { type: "boolean", short: "h" },
        },
        "setup",
      );
      if (values.help) return help();
      noArguments("setup", positionals);
      const jobs = values.jobs === undefined ? undefined : count("setup", "--jobs", values.jobs);
      const kernelSeries = series(values.kernel);
      const progress = new Progress();
      const started = performance.now();
      const lab = await setupLab({
        series: kernelSeries,
        progress,
        installPackages: !values["no-install"],
        ...(jobs ? { jobs } : {}),
      });
      progress.note(
        `lab ready in ${formatDuration(performance.now() - started)}: Linux ${lab.kernelRelease}\n  kernel ${lab.bzImage}\n  build tree ${lab.buildDir}`,
      );
      return EXIT.ok;
    }
    case "run": {
      const { values, positionals } = parseCommandLine(
        rest,
        {
          kernel: { type: "string" },
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
      const kernelSeries = series(values.kernel);
      for (const f of values.file ?? []) checkUserFile(f, "LAB_FILE");
      const lab = requireLab(kernelSeries);
      const result = await runGuest({
        lab,
        files: values.file ?? [],
        commands: positionals,
        shareHost: values["share-host"] ?? false,
        ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
      });
      if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        for (const c of result.commands) {
          process.stdout.write(
            `$ ${c.command}\n${c.output}${c.output.endsWith("\n") || !c.output ? "" : "\n"}`,
          );
          if (c.exitCode !== 0) process.stdout.write(`[exit status ${c.exitCode}]\n`);
        }
        process.stderr.write(`guest ran in ${formatDuration(result.wallMs)} (${result.accel})\n`);
      }
      return result.commands.every((c) => c.exitCode === 0) ? EXIT.ok : EXIT.error;
    }
    case "demo": {
      const { values, positionals } = parseCommandLine(
        rest,
        { kernel: { type: "string" }, help: { type: "boolean", short: "h" } },
        "demo",
      );
      if (values.help) return help();
      noArguments("demo", positionals);
      return (await runDemo(series(values.kernel))) ? EXIT.ok : EXIT.error;
    }
    case "info": {
      const { values, positionals } = parseCommandLine(
        rest,
        { kernel: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
        "info",
      );
      if (values.help) return help();
      noArguments("info", positionals);
      const lab = requireLab(series(values.kernel));
      if (values.json) process.stdout.write(`${JSON.stringify(lab, null, 2)}\n`);
      else {
        process.stdout.write(
          `series:         ${lab.series}\nkernel release: ${lab.kernelRelease}\nsource:         linux-source-${lab.series} ${lab.sourceVersion}\ncompiler:       ${lab.compiler}\nkernel:         ${lab.bzImage}\nbuild tree:     ${lab.buildDir}\ninitramfs:      ${lab.initramfs}\n`,
        );
      }
      return EXIT.ok;
    }
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

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

function help(): number {
  process.stdout.write(USAGE);
  return EXIT.ok;
}

runCli("kpatch-lab", main);
