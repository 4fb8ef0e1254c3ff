/**
 * `kpatch-lab setup --distro 6.12|6.1 [--release KVER | --suite S]`: the lab on Debian's own
 * kernel image, never built here. The image package at the installed linux-source version (or
 * the release asked for) gives the vmlinuz, its config and the modules the guest needs
 * (src/lab/distro-modules.ts, src/debian/image-modules.ts); the headers packages give the tree
 * the kernel's livepatch-sample is built against. Keyed by the package versions, the guest
 * module list and the compiler:
 *
 *   lab/distro-<series>-<key>/headers/         the headers packages joined (hard links)
 *   lab/distro-<series>-<key>/depmod/          modules.dep of the image's modules
 *   lab/distro-<series>-<key>/initramfs.cpio   busybox, /init and the guest modules
 *   lab/distro-<series>-<key>/sample/          livepatch-sample.ko built against the headers
 *                                              (absent when the kbuild package of the image's
 *                                              exact version is gone from apt: ready.json says why)
 *   lab/distro-<series>-<key>/ready.json       written last: the setup is complete
 *   lab/current-distro-<series>                symlink to the newest complete setup
 *   lab/current-distro-<series>-<suite>        the same for another Debian release's kernel
 *   lab/current-distro-<KVER>                  the same for a release asked for (--release KVER:
 *                                              exactly that packaged kernel, any flavour)
 *
 * `--suite trixie` takes Debian 13's newest kernel of the series instead of this machine's
 * (its packages through a private apt state, src/debian/apt-state.ts), and builds the sample
 * with the kernel's own compiler (a build root when this machine has another).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostCodename } from "../debian/apt-sources.js";
import { suiteApt } from "../debian/apt-state.js";
import { buildRootRunner } from "../debian/build-root.js";
import { fetchDebianPackage, findDebianPackage } from "../debian/debian-package.js";
import {
  imageModulesDir,
  loadOrder,
  modulesDep,
  parseBuiltin,
  parseModulesDep,
} from "../debian/image-modules.js";
import { candidateVersion } from "../debian/kernel-packages.js";
import { codenameSuite, type DistroRelease, parseRelease } from "../debian/kernel-release.js";
import { configCompiler } from "../kpatch-build/check-tree.js";
import { distroToolchain } from "../kpatch-build/distro/distro-compiler.js";
import { readConfig } from "../kpatch-build/kernel-config.js";
import { createAtomic, syncDir, writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { buildErrors, exec, execCheck, type Runner } from "../util/exec.js";
import { moduleNameOf } from "../util/module-name.js";
import { Progress } from "../util/progress.js";
import { GUEST_MODULES, guestModulePath, guestModules, moduleEntries } from "./distro-modules.js";
import { type DistroPackages, fetchDistroPackages, joinHeaders } from "./distro-packages.js";
import { buildBaseInitramfs, initramfsIsCurrent } from "./initramfs.js";
import { type KernelSeries, readJsonIfExists } from "./paths.js";
import { compilerVersion, ensurePackages, packageVersion } from "./setup.js";

/** Bump when the layout or the recipe changes in a way the key does not see. */
const DISTRO_FORMAT = 1;

export interface DistroLabInfo {
  series: KernelSeries;
  /** The Debian suite of the kernel, when it is not this machine's own (trixie). */
  suite?: string;
  /** The build root holding the kernel's compiler, when this machine has another; its name for CC. */
  buildRoot?: string;
  cc?: string;
  key: string;
  /**
   * The Debian version of the image and headers packages: linux-source-<series>'s, unless a
   * release was asked for (then that release's image version).
   */
  sourceVersion: string;
  kernelRelease: string;
  image: string;
  headers: string;
  compiler: string;
  /** The modules the guest loads at boot, below /lib/modules, in load order. */
  modules: string[];
  /**
   * Why there is no headers tree and no livepatch-sample (the image's kbuild package is gone):
   * the guest boots all the same. Absent when both were built.
   */
  sampleAbsent?: string;
  timings: Record<string, number>;
  createdAt: string;
}

/** A complete distro lab: what the guest runner, kpatch in the guest and the tests need. */
export interface DistroLab extends DistroLabInfo {
  dir: string;
  /** The image package's vmlinuz (the guest runner boots it as it boots a bzImage). */
  bzImage: string;
  initramfs: string;
  /** The kernel's config (the image package's /boot/config-KVER). */
  config: string;
  /** The image package's lib/modules/KVER. */
  modulesDir: string;
  /** The headers tree to build modules against (make -C headersDir M=...); see sampleAbsent. */
  headersDir: string | undefined;
  /** livepatch-sample.ko built against the headers; undefined when sampleAbsent says why. */
  sampleModule: string | undefined;
}

/** Whether a lab is one of Debian's stock kernels (else the lab kernel built here). */
export function isDistroLab<T extends object>(lab: T | DistroLab): lab is DistroLab {
  return "sampleModule" in lab;
}

/** Why a test that needs the lab's headers or sample skips (false when it has them). */
export function sampleSkip(lab: DistroLab | undefined): string | false {
  return lab?.sampleAbsent ? `${lab.kernelRelease} has no livepatch-sample: ${lab.sampleAbsent}` : false;
}

/** The suite a lab is asked for, undefined for this machine's own (the lab's default). */
function otherSuite(suite: string | undefined): string | undefined {
  return suite && suite !== hostCodename() ? codenameSuite(suite).codename : undefined;
}

/** Which stock kernel of a series: its default, one packaged release, or another suite's newest. */
export interface DistroChoice {
  /** Exactly this packaged kernel of the series (any flavour). */
  kernelRelease?: string | undefined;
  /** The Debian suite whose newest kernel of the series to take (trixie); default this machine's. */
  suite?: string | undefined;
}

/** The link to the newest complete setup of a series' default kernel, of one release, or of a suite's. */
function currentDistroLink(series: KernelSeries, which: DistroChoice): string {
  if (which.kernelRelease) {
    return cachePath("lab", `current-distro-${seriesRelease(series, which.kernelRelease).kernelRelease}`);
  }
  const other = otherSuite(which.suite);
  return cachePath("lab", `current-distro-${series}${other ? `-${other}` : ""}`);
}

/** The distro lab of a series (`which` kernel of it) if it is set up and its packages are in the cache. */
export function findDistroLab(series: KernelSeries, which: DistroChoice = {}): DistroLab | undefined {
  const dir = currentDistroLink(series, which);
  const info = readJsonIfExists<DistroLabInfo>(join(dir, "ready.json"));
  return info && distroLabAt(dir, info);
}

export function requireDistroLab(series: KernelSeries, which: DistroChoice = {}): DistroLab {
  const lab = findDistroLab(series, which);
  if (!lab) {
    const other = otherSuite(which.suite);
    const option = which.kernelRelease
      ? ` --release ${which.kernelRelease}`
      : other
        ? ` --suite ${other}`
        : "";
    const name = which.kernelRelease ?? `${series}${other ? ` ${other}` : ""}`;
    throw new KpatchError(
      "LAB_NOT_SET_UP",
      `Cannot use the stock Debian ${name} kernel: it is not set up; run 'kpatch-lab setup --distro ${series}${option}'`,
    );
  }
  return lab;
}

function distroLabAt(dir: string, info: DistroLabInfo): DistroLab | undefined {
  const image = findDebianPackage(info.image, info.sourceVersion);
  if (!image) return undefined;
  const { kernelRelease } = info;
  return {
    ...info,
    dir,
    bzImage: join(image.root, "boot", `vmlinuz-${kernelRelease}`),
    initramfs: join(dir, "initramfs.cpio"),
    config: join(image.root, "boot", `config-${kernelRelease}`),
    modulesDir: imageModulesDir(image.root, kernelRelease),
    headersDir: info.sampleAbsent ? undefined : join(dir, "headers", "usr", "src", info.headers),
    sampleModule: info.sampleAbsent ? undefined : join(dir, "sample", "livepatch-sample.ko"),
  };
}

export interface DistroSetupOptions extends DistroChoice {
  series: KernelSeries;
  progress?: Progress;
  /** Install missing Debian packages with apt-get (default true). */
  installPackages?: boolean;
}

/** The release `kernelRelease` names, checked to be one of `series`. */
function seriesRelease(series: KernelSeries, kernelRelease: string): DistroRelease {
  const release = parseRelease(kernelRelease);
  if (release.series !== series) {
    throw new KpatchError(
      "DISTRO_BAD_RELEASE",
      `Cannot use ${kernelRelease} as a ${series} kernel: it is a ${release.series} release`,
    );
  }
  return release;
}

/** Set up (or find, when nothing changed) the lab on Debian's stock kernel of a series. */
export async function setupDistroLab(options: DistroSetupOptions): Promise<DistroLab> {
  const { series } = options;
  const progress = options.progress ?? new Progress();
  const release = options.kernelRelease ? seriesRelease(series, options.kernelRelease) : undefined;
  await ensurePackages(series, options.installPackages ?? true, progress);
  const suite = otherSuite(options.suite);
  const apt = suite ? await suiteApt(codenameSuite(suite), progress) : undefined;
  const sourceVersion = apt
    ? await candidateVersion(apt, `linux-source-${series}`)
    : await packageVersion(`linux-source-${series}`);
  if (!sourceVersion)
    throw new KpatchError(
      "LAB_SOURCE",
      `Cannot find the package linux-source-${series}${suite ? ` in ${suite}` : ""}`,
    );
  const pkgs = await fetchDistroPackages(
    series,
    release ? { release } : { version: sourceVersion },
    progress,
    apt,
  );
  const { version } = pkgs;
  const toolchain = apt ? await sampleToolchain(pkgs, progress) : undefined;
  const compiler = toolchain?.text ?? (await compilerVersion());
  const key = createHash("sha256")
    .update(JSON.stringify([DISTRO_FORMAT, series, pkgs.image.name, version, GUEST_MODULES, compiler]))
    .digest("hex")
    .slice(0, 12);
  const dir = cachePath("lab", `distro-${series}${suite ? `-${suite}` : ""}-${key}`);
  const { kernelRelease } = pkgs;
  const modulesDir = imageModulesDir(pkgs.image.root, kernelRelease);

  mkdirSync(dir, { recursive: true });
  const initramfs = join(dir, "initramfs.cpio");
  const ready = readJsonIfExists<DistroLabInfo>(join(dir, "ready.json"));
  let order: string[] = [];
  if (!ready || !initramfsIsCurrent(initramfs)) {
    progress.begin("modules", `${GUEST_MODULES.join(", ")} and what they need`);
    const dep = await modulesDep(modulesDir, kernelRelease, join(dir, "depmod"));
    const deps = parseModulesDep(readFileSync(dep, "utf8"));
    const builtin = parseBuiltin(readFileSync(join(modulesDir, "modules.builtin"), "utf8"));
    const shipped = new Set([...deps.keys()].map((p) => moduleNameOf(p)));
    order = loadOrder(
      deps,
      builtin,
      guestModules((m) => shipped.has(m) || builtin.has(m)),
    );
    progress.end(`${order.length} to load`);
    progress.begin("initramfs", "busybox-static and the guest modules");
    buildBaseInitramfs(initramfs, moduleEntries(modulesDir, kernelRelease, order));
    progress.end();
  }
  const { kbuild } = pkgs;
  if (!ready && !("absent" in kbuild)) {
    progress.begin("headers", pkgs.headers.name);
    const headersDir = await joinHeaders({ ...pkgs, kbuild }, join(dir, "headers"));
    progress.end();
    progress.begin("sample", "livepatch-sample.ko against the headers");
    const source = apt && (await fetchDebianPackage(`linux-source-${series}`, version, apt.options));
    await buildSample({
      series,
      version,
      headersDir,
      out: join(dir, "sample"),
      ...(source ? { tarball: join(source.root, "usr", "src", `linux-source-${series}.tar.xz`) } : {}),
      ...(toolchain ? { run: toolchain.run, makeArgs: [`CC=${toolchain.cc}`] } : {}),
    });
    progress.end();
  }
  const info: DistroLabInfo = ready ?? {
    series,
    ...(suite ? { suite } : {}),
    ...(toolchain?.buildRoot ? { buildRoot: toolchain.buildRoot, cc: toolchain.cc } : {}),
    key,
    sourceVersion: version,
    kernelRelease,
    image: pkgs.image.name,
    headers: pkgs.headers.name,
    compiler,
    modules: order.map((p) => guestModulePath(kernelRelease, p)),
    ...("absent" in kbuild ? { sampleAbsent: kbuild.absent } : {}),
    timings: { ...progress.timings },
    createdAt: new Date().toISOString(),
  };
  if (!ready) writeFileAtomic(join(dir, "ready.json"), `${JSON.stringify(info, null, 2)}\n`);
  if (info.sampleAbsent) progress.note(`no headers tree and no livepatch-sample: ${info.sampleAbsent}`);
  const link = currentDistroLink(series, release ? { kernelRelease } : { suite });
  await createAtomic(link, (tmp) => symlinkSync(dir, tmp));
  const lab = distroLabAt(dir, info);
  if (!lab) throw new KpatchError("DISTRO_IMAGE", `Cannot find ${info.image}=${version} in the cache`);
  if (ready) progress.note(`stock ${series} kernel ready (cached): ${kernelRelease}, ${dir}`);
  return lab;
}

/**
 * How modules are built against a distro lab's headers: with the kernel's compiler, in its build
 * root when the lab has one (make's runner and CC), else here.
 */
export function distroLabKbuild(lab: DistroLab): { run?: Runner; makeArgs?: string[] } {
  return lab.buildRoot && lab.cc ? { run: buildRootRunner(lab.buildRoot), makeArgs: [`CC=${lab.cc}`] } : {};
}

/** The kernel's compiler for the sample: here, or in its suite's build root. */
async function sampleToolchain(pkgs: DistroPackages, progress: Progress) {
  const configPath = join(pkgs.image.root, "boot", `config-${pkgs.kernelRelease}`);
  const config = readConfig(configPath);
  const toolchain = await distroToolchain({
    config,
    configPath,
    release: parseRelease(pkgs.kernelRelease),
    progress,
  });
  return { ...toolchain, text: configCompiler(config, configPath).text };
}

const SAMPLE_PATH = "samples/livepatch/livepatch-sample.c";

/** The kernel's livepatch-sample.c: from the unpacked lab source when there, else the tarball. */
async function sampleSource(
  series: KernelSeries,
  version: string,
  tarball = `/usr/src/linux-source-${series}.tar.xz`,
): Promise<string> {
  const unpacked = cachePath("src", version, `linux-source-${series}`, SAMPLE_PATH);
  if (existsSync(unpacked)) return readFileSync(unpacked, "utf8");
  const r = await execCheck("tar", ["-xJOf", tarball, `linux-source-${series}/${SAMPLE_PATH}`], {
    what: `tar -x ${SAMPLE_PATH} from ${tarball}`,
  });
  return r.stdout;
}

/** livepatch-sample.ko built as an out-of-tree module against `headersDir`, at `out` (complete or absent). */
async function buildSample(o: {
  series: KernelSeries;
  version: string;
  headersDir: string;
  out: string;
  /** linux-source-<series>'s tarball (default: the installed one). */
  tarball?: string;
  /** Where make runs (the kernel's build root) and what it takes (CC). */
  run?: Runner;
  makeArgs?: string[];
}) {
  const { headersDir, out } = o;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(join(tmp, "livepatch-sample.c"), await sampleSource(o.series, o.version, o.tarball));
    writeFileSync(join(tmp, "Kbuild"), "obj-m := livepatch-sample.o\n");
    const r = await (o.run ?? exec)("make", ["-C", headersDir, `M=${tmp}`, ...(o.makeArgs ?? []), "modules"]);
    if (r.code !== 0 || !existsSync(join(tmp, "livepatch-sample.ko"))) {
      throw new KpatchError(
        "BUILD_FAILED",
        `Cannot build livepatch-sample against ${headersDir}: make exited with ${r.code}:\n${buildErrors(r)}`,
      );
    }
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    syncDir(join(out, ".."));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
