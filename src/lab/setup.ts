/**
 * `kpatch-lab setup`: packages, kernel source, config, build, initramfs. Each step is cached:
 * a lab is keyed by the kernel series, the Debian source package version, the config
 * fragments, and the compiler, so a second setup with nothing changed only checks the key.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitForAptLists } from "../debian/apt-update.js";
import { unpackKernelSource } from "../debian/kernel-source.js";
import { parseConfig, readConfig } from "../kpatch-build/kernel-config.js";
import { createAtomic, writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { buildErrors, exec, execCheck } from "../util/exec.js";
import { Progress } from "../util/progress.js";
import { buildBaseInitramfs, initramfsIsCurrent } from "./initramfs.js";
import { configMismatches, formatMismatches } from "./kernel-config.js";
import { currentLabLink, type KernelSeries, readJsonIfExists } from "./paths.js";

/** Bump when the lab's layout or build recipe changes in a way the key does not see. */
const LAB_FORMAT = 1;

/** The repository's lab/ folder (config fragments, initramfs /init). */
const LAB_ASSETS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "lab");

export interface LabInfo {
  series: KernelSeries;
  key: string;
  sourceVersion: string;
  kernelRelease: string;
  compiler: string;
  objects: number;
  timings: Record<string, number>;
  createdAt: string;
}

/** A complete lab: what the guest runner and the tests need. */
export interface Lab extends LabInfo {
  dir: string;
  srcDir: string;
  buildDir: string;
  bzImage: string;
  /** The kernel's .config. */
  config: string;
  initramfs: string;
}

export interface SetupOptions {
  series: KernelSeries;
  jobs?: number;
  progress?: Progress;
  /** Install missing Debian packages with apt-get (default true). */
  installPackages?: boolean;
}

const COMMON_PACKAGES = [
  "gcc",
  "make",
  "binutils",
  "bc",
  "flex",
  "bison",
  "libelf-dev",
  "libssl-dev",
  // kbuild makes the lab's module signing key (CONFIG_MODULE_SIG) with openssl req
  "openssl",
  "xz-utils",
  "kmod",
  "cpio",
  "e2fsprogs",
  "busybox-static",
  "qemu-system-x86",
  // pahole: Debian's config has DEBUG_INFO_BTF(_MODULES); without it olddefconfig drops them and a
  // stock-kernel build (the demo) is refused, and module BTF cannot be made
  "dwarves",
];

function labPackages(series: KernelSeries): string[] {
  const extra = series === "6.12" ? ["linux-source-6.12", "linux-config-6.12"] : ["linux-source-6.1"];
  return [...COMMON_PACKAGES, ...extra];
}

function sourceTarball(series: KernelSeries): string {
  return `/usr/src/linux-source-${series}.tar.xz`;
}

function fragmentText(series: KernelSeries): string {
  return ["common.config", `${series}.config`]
    .map((f) => readFileSync(join(LAB_ASSETS, "config", f), "utf8"))
    .join("\n");
}

export async function packageVersion(pkg: string): Promise<string | undefined> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a dpkg-query format, not a template
  const r = await exec("dpkg-query", ["-W", "-f=${Status}\t${Version}", pkg]);
  if (r.code !== 0) return undefined;
  const [status, version] = r.stdout.split("\t");
  return status?.endsWith(" installed") ? version : undefined;
}

export async function compilerVersion(): Promise<string> {
  const r = await execCheck("gcc", ["--version"]);
  return r.stdout.split("\n")[0] ?? "gcc";
}

/** The lab of a series if one is set up and complete, without building anything. */
export function findLab(series: KernelSeries): Lab | undefined {
  const dir = currentLabLink(series);
  const info = readJsonIfExists<LabInfo>(join(dir, "ready.json"));
  if (!info) return undefined;
  return labAt(dir, info);
}

export function requireLab(series: KernelSeries): Lab {
  const lab = findLab(series);
  if (!lab) {
    throw new KpatchError(
      "LAB_NOT_SET_UP",
      `Cannot use the ${series} lab: it is not set up; run 'kpatch-lab setup --kernel ${series}'`,
    );
  }
  return lab;
}

function labAt(dir: string, info: LabInfo): Lab {
  return {
    ...info,
    dir,
    srcDir: cachePath("src", info.sourceVersion, `linux-source-${info.series}`),
    buildDir: join(dir, "build"),
    bzImage: join(dir, "build", "arch", "x86", "boot", "bzImage"),
    config: join(dir, "build", ".config"),
    initramfs: join(dir, "initramfs.cpio"),
  };
}

export async function ensurePackages(
  series: KernelSeries,
  install: boolean,
  progress: Progress,
): Promise<void> {
  progress.begin("packages", "checking");
  if (!existsSync("/etc/debian_version")) {
    throw new KpatchError(
      "LAB_NOT_DEBIAN",
      "Cannot set up the lab: it needs Debian 12 (no /etc/debian_version)",
    );
  }
  const pkgs = labPackages(series);
  const missing: string[] = [];
  for (const p of pkgs) if (!(await packageVersion(p))) missing.push(p);
  if (missing.length === 0) {
    progress.end(`${pkgs.length} packages present`);
    return;
  }
  const cmd = `apt-get install -y --no-install-recommends ${missing.join(" ")}`;
  if (!install)
    throw new KpatchError("LAB_PACKAGES_MISSING", `Cannot set up the lab: missing packages; run: ${cmd}`);
  if (process.getuid?.() !== 0) {
    throw new KpatchError(
      "LAB_NOT_ROOT",
      `Cannot install ${missing.join(", ")}: not root; run as root, or first: sudo ${cmd}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  progress.update(`apt-get update`);
  // Wait for another apt or dpkg run (unattended upgrades, a parallel setup) instead of failing.
  const lock = ["-o", "DPkg::Lock::Timeout=600"];
  await execCheck("apt-get", [...lock, "update", "-q"], {
    env,
    what: "apt-get update",
    run: waitForAptLists,
  });
  let n = 0;
  await execCheck("apt-get", [...lock, "install", "-y", "-q", "--no-install-recommends", ...missing], {
    env,
    what: "apt-get install",
    onLine: (l) => {
      if (/^(Unpacking|Setting up) /.test(l))
        progress.update(`installing: ${l.split(" ")[2] ?? ""}`, ++n / 200);
    },
  });
  progress.end(`installed ${missing.join(" ")}`);
}

function makeArgs(srcDir: string, buildDir: string, jobs: number, ...targets: string[]): string[] {
  return ["-C", srcDir, `O=${buildDir}`, `-j${jobs}`, ...targets];
}

const BUILD_ENV = { KBUILD_BUILD_USER: "kpatch-ts", KBUILD_BUILD_HOST: "lab" };

async function configure(series: KernelSeries, srcDir: string, buildDir: string, progress: Progress) {
  progress.begin("configure", "tinyconfig + lab fragment");
  const config = join(buildDir, ".config");
  const fragment = join(buildDir, "lab-fragment.config");
  const text = fragmentText(series);
  if (existsSync(config) && existsSync(fragment) && readFileSync(fragment, "utf8") === text) {
    const bad = configMismatches(parseConfig(text), readConfig(config));
    if (bad.length === 0) {
      progress.end("cached");
      return;
    }
  }
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(fragment, text);
  const env = { ...process.env, ...BUILD_ENV };
  await execCheck("make", makeArgs(srcDir, buildDir, 1, "tinyconfig"), { env, what: "make tinyconfig" });
  await execCheck(join(srcDir, "scripts/kconfig/merge_config.sh"), ["-m", "-O", buildDir, config, fragment], {
    cwd: srcDir,
    env,
    what: "merge_config.sh",
  });
  await execCheck("make", makeArgs(srcDir, buildDir, 1, "olddefconfig"), { env, what: "make olddefconfig" });
  const bad = configMismatches(parseConfig(text), readConfig(config));
  if (bad.length > 0) {
    throw new KpatchError(
      "LAB_CONFIG",
      `Cannot configure the lab kernel: these fragment lines do not hold after olddefconfig:\n${formatMismatches(bad)}`,
      { file: config },
    );
  }
  progress.end(`${parseConfig(text).size} options checked`);
}

/** Objects compiled in a full lab build, measured, for a percentage on the first build. */
function expectedObjects(series: KernelSeries): number | undefined {
  const known = readJsonIfExists<Record<string, number>>(join(LAB_ASSETS, "config", "expected-objects.json"));
  return known?.[series];
}

async function build(
  series: KernelSeries,
  srcDir: string,
  buildDir: string,
  jobs: number,
  progress: Progress,
) {
  progress.begin("build", `make -j${jobs} bzImage modules`);
  const expected = expectedObjects(series);
  let compiled = 0;
  const r = await exec("make", makeArgs(srcDir, buildDir, jobs, "bzImage", "modules"), {
    env: { ...process.env, ...BUILD_ENV },
    onLine: (line) => {
      const m = /^\s+(CC|AS)( \[M\])?\s+(\S+)/.exec(line);
      if (!m) return;
      compiled++;
      progress.update(
        `${compiled}${expected ? `/${expected}` : ""} objects, ${m[3]}`,
        expected && compiled / expected,
      );
    },
  });
  if (r.code !== 0) {
    throw new KpatchError(
      "BUILD_FAILED",
      `Cannot build the lab kernel: make exited with ${r.code}:\n${buildErrors(r)}`,
      {
        file: buildDir,
      },
    );
  }
  progress.end(`${compiled} objects compiled`);
  return compiled;
}

async function labKey(series: KernelSeries): Promise<{ key: string; version: string; compiler: string }> {
  const version = await packageVersion(`linux-source-${series}`);
  if (!version) throw new KpatchError("LAB_SOURCE", `Cannot find the package linux-source-${series}`);
  const compiler = await compilerVersion();
  const key = createHash("sha256")
    .update(JSON.stringify([LAB_FORMAT, series, version, compiler, fragmentText(series)]))
    .digest("hex")
    .slice(0, 12);
  return { key, version, compiler };
}

/** Set up (or find, when nothing changed) the lab for a kernel series. */
export async function setupLab(options: SetupOptions): Promise<Lab> {
  const { series } = options;
  const progress = options.progress ?? new Progress();
  const jobs = options.jobs ?? cpus().length;
  await ensurePackages(series, options.installPackages ?? true, progress);
  const { key, version, compiler } = await labKey(series);
  const dir = cachePath("lab", `${series}-${key}`);
  const ready = readJsonIfExists<LabInfo>(join(dir, "ready.json"));
  if (ready) {
    // The initramfs is cheap and not part of the key: remake it when /init or busybox changed.
    const initramfs = join(dir, "initramfs.cpio");
    if (!initramfsIsCurrent(initramfs)) buildBaseInitramfs(initramfs);
    await linkCurrent(series, dir);
    progress.note(`lab ${series} ready (cached): ${ready.kernelRelease}, ${dir}`);
    return labAt(dir, ready);
  }
  const srcDir = await unpackKernelSource({ series, version, tarball: sourceTarball(series), progress });
  const buildDir = join(dir, "build");
  await configure(series, srcDir, buildDir, progress);
  const objects = await build(series, srcDir, buildDir, jobs, progress);
  progress.begin("initramfs", "busybox-static");
  const initramfs = join(dir, "initramfs.cpio");
  buildBaseInitramfs(initramfs);
  progress.end();
  const kernelRelease = readFileSync(join(buildDir, "include", "config", "kernel.release"), "utf8").trim();
  const info: LabInfo = {
    series,
    key,
    sourceVersion: version,
    kernelRelease,
    compiler,
    objects,
    timings: { ...progress.timings },
    createdAt: new Date().toISOString(),
  };
  writeFileAtomic(join(dir, "ready.json"), `${JSON.stringify(info, null, 2)}\n`);
  await linkCurrent(series, dir);
  return labAt(dir, info);
}

async function linkCurrent(series: KernelSeries, dir: string): Promise<void> {
  await createAtomic(currentLabLink(series), (tmp) => symlinkSync(dir, tmp));
}
