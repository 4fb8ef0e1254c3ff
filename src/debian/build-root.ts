/**
 * A build root: a Debian suite's minimal system (debootstrap --variant=minbase) with one gcc and
 * what a kernel build needs, so that a kernel built by that suite's compiler (Debian 13's gcc
 * 14) is compiled by exactly it on a machine of another release (Debian 12, gcc 12). Commands
 * run inside it by chroot, in a mount namespace of their own (unshare) where the cache, $TMPDIR
 * and the paths a command names are bind-mounted at the same paths: a tree prepared in the
 * cache is the same tree inside and out. Nothing stays mounted on this machine.
 * One per suite, compiler and package list, complete or absent:
 *
 *   <cache>/build-root/<codename>-<cc>-<key>/root/        the system
 *   <cache>/build-root/<codename>-<cc>-<key>/ready.json   written last
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { type ExecResult, exec, execCheck, type Runner, type RunOptions } from "../util/exec.js";
import type { Progress } from "../util/progress.js";
import { hostAptSources, hostCodename, suiteMirrors } from "./apt-sources.js";
import type { DebianSuite } from "./kernel-release.js";

/** Bump when the recipe changes in a way the key does not see. */
const BUILD_ROOT_FORMAT = 1;
/** A kernel build's tools besides the compiler: kbuild, objtool, resolve_btfids (python3), pahole (BTF), sign-file. */
const KERNEL_BUILD_PACKAGES = [
  "make",
  "bc",
  "bison",
  "flex",
  "perl",
  "python3",
  "libelf-dev",
  "libssl-dev",
  "openssl",
  "dwarves",
  "cpio",
  "kmod",
  "xz-utils",
];

export interface BuildRoot {
  /** The root directory commands are chrooted into. */
  root: string;
  codename: string;
  /** The compiler it holds, as `--version` prints it (the kernel's CONFIG_CC_VERSION_TEXT). */
  compilerText: string;
  run: Runner;
}

interface BuildRootInfo {
  codename: string;
  mirror: string;
  packages: string[];
  compilerText: string;
  seconds: number;
  createdAt: string;
}

/** The Debian package that holds compiler `cc` (x86_64-linux-gnu-gcc-14, gcc-14: gcc-14). */
export function compilerPackage(cc: string): string | undefined {
  const n = /(?:^|-)gcc-(\d+)$/.exec(cc)?.[1];
  return n ? `gcc-${n}` : undefined;
}

/**
 * The build root of `suite` holding compiler `cc`, made when it is not in the cache (minutes:
 * debootstrap, progress shown). `compilerText` is what `cc --version` must say in it; a suite
 * whose gcc has moved on is refused (TREE_COMPILER, naming both).
 */
export async function buildRootFor(options: {
  suite: DebianSuite;
  cc: string;
  compilerText: string;
  progress: Progress;
}): Promise<BuildRoot> {
  const { suite, cc, compilerText, progress } = options;
  const gcc = compilerPackage(cc);
  if (!gcc) {
    throw new KpatchError(
      "TREE_COMPILER",
      `Cannot make a build root for '${compilerText}': cannot tell which Debian package holds ${cc}`,
    );
  }
  const mirror = suiteMirrors(hostAptSources(), hostCodename()).archive;
  const packages = [gcc, "gcc", ...KERNEL_BUILD_PACKAGES];
  const key = createHash("sha256")
    .update(JSON.stringify([BUILD_ROOT_FORMAT, suite.codename, mirror, packages, compilerText]))
    .digest("hex")
    .slice(0, 12);
  const dir = cachePath("build-root", `${suite.codename}-${cc}-${key}`);
  const root = join(dir, "root");
  const found = { root, codename: suite.codename, compilerText, run: buildRootRunner(root) };
  progress.begin("build root", `${suite.codename} with ${compilerText} (${dir})`);
  if (existsSync(join(dir, "ready.json"))) {
    progress.end("cached");
    return found;
  }
  if (process.getuid?.() !== 0) {
    throw new KpatchError(
      "TREE_COMPILER",
      `Cannot make the ${suite.codename} build root for '${compilerText}': debootstrap and chroot need root`,
    );
  }
  const started = performance.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await debootstrap({ codename: suite.codename, root: join(tmp, "root"), mirror, packages, progress });
    const made = await compilerIn(buildRootRunner(join(tmp, "root")), cc);
    if (made !== compilerText) {
      throw new KpatchError(
        "TREE_COMPILER",
        `Cannot build for this kernel here: it was built with '${compilerText}', ${suite.codename}'s ${cc} is now '${made ?? "missing"}'`,
      );
    }
    const info: BuildRootInfo = {
      codename: suite.codename,
      mirror,
      packages,
      compilerText,
      seconds: Math.round((performance.now() - started) / 1000),
      createdAt: new Date().toISOString(),
    };
    writeFileAtomic(join(tmp, "ready.json"), `${JSON.stringify(info, null, 2)}\n`);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another process made it meanwhile: theirs is complete, keep it.
      if (!existsSync(join(dir, "ready.json"))) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  progress.end(`made in ${readInfo(dir).seconds} s`);
  return found;
}

function readInfo(dir: string): BuildRootInfo {
  return JSON.parse(readFileSync(join(dir, "ready.json"), "utf8")) as BuildRootInfo;
}

async function debootstrap(o: {
  codename: string;
  root: string;
  mirror: string;
  packages: string[];
  progress: Progress;
}): Promise<void> {
  let fetched = 0;
  await execCheck(
    "debootstrap",
    ["--variant=minbase", `--include=${o.packages.join(",")}`, o.codename, o.root, o.mirror],
    {
      what: `debootstrap of ${o.codename}`,
      timeoutMs: 1_800_000,
      onLine: (line) => {
        const m = /^I: (Retrieving|Validating|Unpacking|Configuring|Installing) ?(.*)$/.exec(line);
        if (!m) return;
        if (m[1] === "Retrieving") fetched++;
        o.progress.update(`debootstrap: ${m[1]!.toLowerCase()} ${m[2] ?? ""} (${fetched} packages fetched)`);
      },
    },
  ).catch((e: unknown) => {
    if (e instanceof KpatchError && e.code === "EXEC_NOT_FOUND") {
      throw new KpatchError(
        "TREE_COMPILER",
        `Cannot make the ${o.codename} build root: debootstrap is not installed (apt-get install debootstrap)`,
      );
    }
    throw e;
  });
}

async function compilerIn(run: Runner, cc: string): Promise<string | undefined> {
  const r = await run(cc, ["--version"]).catch(() => undefined);
  return r?.code === 0 ? r.stdout.split("\n")[0]?.trim() : undefined;
}

/** The sh script run in a fresh mount namespace: bind the paths, then chroot and chdir. */
const ENTER_ROOT = [
  "root=$1; cwd=$2; n=$3; shift 3; i=0; set -e",
  'while [ "$i" -lt "$n" ]; do mkdir -p "$root$1"; mount --bind "$1" "$root$1"; shift; i=$((i + 1)); done',
  'mount -t proc proc "$root/proc"',
  'mount --rbind /dev "$root/dev"',
  'exec chroot "$root" /usr/bin/env -C "$cwd" -- "$@"',
].join("\n");

/**
 * Runs commands in `root`: the cache, $TMPDIR, /tmp, the working directory and `paths` are seen
 * at the same paths inside. The mounts live and die with the command's own mount namespace.
 */
export function buildRootRunner(root: string): Runner {
  return (cmd: string, args: readonly string[], options: RunOptions = {}): Promise<ExecResult> => {
    const cwd = options.cwd ?? process.cwd();
    const binds = [...new Set([cachePath(), tmpdir(), "/tmp", cwd, ...(options.paths ?? [])])].filter((p) =>
      existsSync(p),
    );
    const { paths: _paths, ...rest } = options;
    return exec(
      "unshare",
      [
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        ENTER_ROOT,
        "enter-root",
        root,
        cwd,
        String(binds.length),
        ...binds,
        cmd,
        ...args,
      ],
      { ...rest, cwd: "/", env: { ...(options.env ?? process.env), LC_ALL: "C.UTF-8" } },
    );
  };
}
