/**
 * `kpatch-build [options] PATCH...`: build a live patch module from source patches. kpatch's
 * interface, so users can switch without relearning. The kpatch-build entry loads this module
 * only for this verb (diff-object does not pay for the build pipeline's modules).
 */
import { cpus } from "node:os";
import { resolve } from "node:path";
import { isSourceFile, withImage } from "../kpatch-build/check-only.js";
import { type KpatchBuildResult, kpatchBuild } from "../kpatch-build/kpatch-build.js";
import { RunPreError } from "../run-pre/run-pre-check.js";
import { formatRunPre } from "../run-pre/run-pre-format.js";
import { formatDuration, Progress } from "../util/progress.js";
import { checkUserDir, checkUserFile } from "../util/user-file.js";
import { parseCommandLine } from "./args.js";
import { checkOnlyCommand } from "./kpatch-build-check.js";
import { chooseTarget } from "./kpatch-build-target.js";
import { EXIT, UsageError } from "./main.js";

const USAGE = `Usage: kpatch-build [options] PATCH...
       kpatch-build diff-object ORIG.o PATCHED.o -o OUT.o [options]   (see diff-object --help)

Build a live patch module (livepatch-<name>.ko) from one or more source patches
(unified diffs against the kernel tree, applied with patch -p1, in order).

The patches are applied to the kernel source, the objects they change are
rebuilt with -ffunction-sections -fdata-sections next to a cached original build,
the two versions of each object are compared function by function, and a module
is generated that registers the new functions with the kernel's livepatch core.
The source tree is restored afterwards, also on failure, Ctrl-C or a closed
terminal; a run killed outright is cleaned up by the next one.

The target kernel:
  --kernel-release KVER  a Debian kernel (KVER as uname -r prints it, e.g.
                         6.12.117+deb12-amd64), installed or not: its image,
                         headers and linux-source packages at one version (fetched
                         into the cache when not installed; +deb13: Debian 13's, found
                         through apt for trixie with a state of its own), a tree prepared
                         once per version; only the objects the patch reaches are
                         compiled, always by the kernel's own gcc (in a build root of
                         its Debian suite when this machine has another)
  -s DIR                 your kernel: its source and the kbuild output tree that
                         built the running kernel (nothing is rebuilt there)
  --kernel 6.12|6.1      a lab kernel (kpatch-lab setup)
  (none)                 the running kernel when Debian packaged it, else the
                         6.12 lab kernel (a note says so)

Options:
  -s, --sourcedir DIR    kernel source tree (default: the lab's)
  -b, --build-dir DIR    its kbuild output tree, when it was built with O=
                         (default: the source tree itself)
  -c, --config FILE      the kernel's .config; must be the build tree's own
  -v, --vmlinux FILE     the kernel's vmlinux with symbols (default: the build
                         tree's; for a Debian kernel: /proc/kallsyms on it, else
                         the image's kallsyms; the -dbg package's vmlinux is taken)
      --kernel SERIES    lab kernel series: 6.12 (default) or 6.1
      --kernel-release KVER   a Debian kernel (see above)
      --sign KEY CERT    sign the module (Secure Boot) with the kernel's sign-file
  -j, --jobs N           parallel make jobs (default: number of CPUs)
  -t, --target T         kbuild target to build (kpatch compatibility; ignored:
                         only objects the patch changes are rebuilt)
  -n, --name NAME        module name (default: livepatch-<first patch name>)
  -o, --output DIR       where to write the module (default: .)
  -R, --non-replace      do not replace earlier patches (atomic replace is the default)
      --allow-fuzz       accept a hunk that applies only at another line (offset)
                         or with context ignored (fuzz); each is warned about.
                         Without it such a patch is refused: a live patch built
                         from a misplaced hunk may change other lines than meant
      --check-only       run only the run-pre check: compare the original build of
                         what the patches change (or, given source files instead of
                         patches, of every function built from them) with the
                         target kernel's code; build nothing
      --image FILE       the kernel image to check against (vmlinuz, bzImage or
                         vmlinux; default: the vmlinux)
      --skip-run-pre     EXPERTS: build even when the original build does not match
                         the target kernel's code (the module may crash the kernel)
      --json             print the result (module, functions, run-pre check,
                         timings) as JSON
  -d, --debug            keep going verbose: print stack traces of errors
      --skip-cleanup     keep the work directory (printed at the end)
  -h, --help             this text

Environment:
  KPATCH_TS_CACHE        cache directory (default ~/.cache/kpatch-ts)
  KPATCH_TS_BUILD_ROOT   off: refuse a kernel built by another gcc than this
                         machine's instead of compiling in a build root

Exit status:
  0  the module was built
  1  an error (the message names the file, section or symbol)
  130 interrupted (Ctrl-C, SIGTERM or SIGHUP); the source tree is restored first
  2  the change cannot be applied live (e.g. it changes .data or __init code),
     or a usage error
  3  the patches change nothing that needs patching
  4  the run-pre check failed: the original build is not the code the target
     kernel runs (source version, config or compiler differ); nothing built
`;

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Every file and directory named on the command line, checked before any work starts (and
 * before the source tree is touched): a missing patch, a directory or a FIFO given as one, an
 * output directory that does not exist.
 */
function checkInputs(
  values: {
    sourcedir?: string;
    "build-dir"?: string;
    config?: string;
    vmlinux?: string;
    image?: string;
    output?: string;
  },
  patches: string[],
): void {
  for (const p of patches) checkUserFile(p, "PATCH_NOT_FOUND");
  if (values.sourcedir) checkUserDir(values.sourcedir, "TREE_NOT_FOUND", "kernel source tree");
  if (values["build-dir"]) checkUserDir(values["build-dir"], "TREE_NOT_FOUND", "kernel build tree");
  if (values.config) checkUserFile(values.config, "INPUT_FILE");
  if (values.vmlinux) checkUserFile(values.vmlinux, "INPUT_FILE");
  if (values.image) checkUserFile(values.image, "INPUT_FILE");
  checkUserDir(values.output ?? ".", "OUTPUT_DIR", "output directory");
}

/** `--sign KEY CERT` takes two values, which parseArgs cannot say: taken out first. */
function takeSign(argv: string[]): { args: string[]; sign?: { key: string; cert: string } } {
  const at = argv.indexOf("--sign");
  if (at < 0) return { args: argv };
  const [key, cert] = [argv[at + 1], argv[at + 2]];
  if (!key || !cert || key.startsWith("-") || cert.startsWith("-")) {
    throw new UsageError("--sign takes two files: the private key and its X.509 certificate");
  }
  checkUserFile(key, "INPUT_FILE");
  checkUserFile(cert, "INPUT_FILE");
  return {
    args: [...argv.slice(0, at), ...argv.slice(at + 3)],
    sign: { key: resolve(key), cert: resolve(cert) },
  };
}

export async function buildMain(argv: string[]): Promise<number> {
  const { args, sign } = takeSign(argv);
  const { values, positionals } = parseCommandLine(args, {
    sourcedir: { type: "string", short: "s" },
    "build-dir": { type: "string", short: "b" },
    config: { type: "string", short: "c" },
    vmlinux: { type: "string", short: "v" },
    kernel: { type: "string" },
    "kernel-release": { type: "string" },
    jobs: { type: "string", short: "j" },
    target: { type: "string", short: "t", multiple: true },
    name: { type: "string", short: "n" },
    output: { type: "string", short: "o" },
    "non-replace": { type: "boolean", short: "R" },
    "allow-fuzz": { type: "boolean" },
    json: { type: "boolean" },
    "check-only": { type: "boolean" },
    image: { type: "string" },
    "skip-run-pre": { type: "boolean" },
    debug: { type: "boolean", short: "d" },
    "skip-cleanup": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError("no patch given");
  const jobs = values.jobs ? Number(values.jobs) : cpus().length;
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`bad --jobs '${values.jobs}'`);
  // --check-only takes source files of the kernel tree instead of patches.
  checkInputs(values, values["check-only"] ? positionals.filter((p) => !isSourceFile(p)) : positionals);
  const progress = new Progress();
  const started = performance.now();
  const tree = withImage(await chooseTarget(values, jobs, progress), values.image);
  let workDir: string | undefined;
  const stop = stopOnSignals(progress);
  try {
    if (values["check-only"]) {
      const json = values.json ?? false;
      return await checkOnlyCommand({
        tree,
        inputs: positionals,
        json,
        jobs,
        progress,
        signal: stop.signal,
      });
    }
    const result = await kpatchBuild({
      tree,
      patches: positionals,
      ...(values.name ? { name: values.name } : {}),
      outDir: values.output ?? ".",
      replace: !values["non-replace"],
      jobs,
      skipCleanup: values["skip-cleanup"] ?? false,
      ...(sign ? { sign } : {}),
      progress,
      signal: stop.signal,
      ...(values["allow-fuzz"] ? { allowFuzz: true } : {}),
      ...(values["skip-run-pre"] ? { skipRunPre: true } : {}),
      onWorkDir: (d) => {
        workDir = d;
      },
    });
    printBuildResult(result, values.json ?? false);
    progress.note(`built ${result.module} in ${formatDuration(performance.now() - started)}`);
    if (values["skip-cleanup"] && workDir) progress.note(`work directory kept: ${workDir}`);
    return EXIT.ok;
  } catch (e) {
    // The exit status is exitStatus()'s (4); what did not match is said here.
    if (e instanceof RunPreError) process.stderr.write(`${formatRunPre(e.report)}\n`);
    throw e;
  } finally {
    stop.release();
  }
}

/**
 * Ctrl-C, SIGTERM, a closed terminal (SIGHUP) abort `signal`: the run stops and its failure path
 * restores the tree. `release` stops listening.
 */
function stopOnSignals(progress: Progress): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) progress.note(`${signal}: stopping, restoring the source tree...`);
    stop.abort(signal);
  };
  // With the terminal gone, writing to it fails: that must not end the run before the restore.
  const ignore = () => {};
  process.stdout.on("error", ignore);
  process.stderr.on("error", ignore);
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  const release = () => {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  };
  return { signal: stop.signal, release };
}

/** The patched functions, one `target: function[,sympos]` a line, and the module; or --json. */
function printBuildResult(result: KpatchBuildResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  for (const t of result.targets) {
    for (const f of t.funcs)
      process.stdout.write(`${t.name}: ${f.oldName}${f.sympos ? `,${f.sympos}` : ""}\n`);
  }
  process.stdout.write(`${result.module}\n`);
}
