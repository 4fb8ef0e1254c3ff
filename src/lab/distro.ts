/**
 * `kpatch-lab setup --distro 6.12|6.1 [--release KVER]`: the lab on Debian's own kernel image,
 * never built here. The image package at the installed linux-source version (or the release
 * asked for) gives the vmlinuz, its config and the modules the guest needs
 * (src/lab/distro-modules.ts, src/debian/image-modules.ts); the headers packages give the tree
 * the kernel's livepatch-sample is built against. Keyed by the package versions, the guest
 * module list and the compiler:
 *
 *   lab/distro-<series>-<key>/headers/         the headers packages joined (hard links)
 *   lab/distro-<series>-<key>/depmod/          modules.dep of the image's modules
 *   lab/distro-<series>-<key>/initramfs.cpio   busybox, /init and the guest modules
 *   lab/distro-<series>-<key>/sample/          livepatch-sample.ko built against the headers
 *   lab/distro-<series>-<key>/ready.json       written last: the setup is complete
 *   lab/current-distro-<series>                symlink to the newest complete setup
 *   lab/current-distro-<KVER>                  the same for a release asked for (--release KVER:
 *                                              exactly that packaged kernel, any flavour)
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findDebianPackage } from "../debian/debian-package.js";
import { loadOrder, modulesDep, parseBuiltin, parseModulesDep } from "../debian/image-modules.js";
import { type DistroRelease, parseRelease } from "../debian/kernel-release.js";
import { createAtomic, syncDir, writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { buildErrors, exec, execCheck } from "../util/exec.js";
import { moduleNameOf } from "../util/module-name.js";
import { Progress } from "../util/progress.js";
import { GUEST_MODULES, guestModulePath, guestModules, moduleEntries } from "./distro-modules.js";
import { fetchDistroPackages, joinHeaders } from "./distro-packages.js";
import { buildBaseInitramfs, initramfsIsCurrent } from "./initramfs.js";
import { type KernelSeries, readJsonIfExists } from "./paths.js";
import { compilerVersion, ensurePackages, packageVersion } from "./setup.js";

/** Bump when the layout or the recipe changes in a way the key does not see. */
const DISTRO_FORMAT = 1;

export interface DistroLabInfo {
  series: KernelSeries;
  key: string;
  /**
   * The Debian version of the image and headers packages: the installed linux-source-<series>'s,
   * unless a release was asked for (then that release's image version).
   */
  sourceVersion: string;
  kernelRelease: string;
  image: string;
  headers: string;
  compiler: string;
  /** The modules the guest loads at boot, below /lib/modules, in load order. */
  modules: string[];
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
  /** The headers tree to build modules against (make -C headersDir M=...). */
  headersDir: string;
  /** livepatch-sample.ko built against the headers. */
  sampleModule: string;
}

/** The link to the newest complete setup of a series' default kernel, or of one release. */
function currentDistroLink(series: KernelSeries, kernelRelease?: string): string {
  return cachePath("lab", kernelRelease ? `current-distro-${kernelRelease}` : `current-distro-${series}`);
}

/**
 * The distro lab of a series (its default kernel, or the release `kernelRelease` names) if it is
 * set up and its packages are in the cache.
 */
export function findDistroLab(series: KernelSeries, kernelRelease?: string): DistroLab | undefined {
  const release = kernelRelease ? seriesRelease(series, kernelRelease) : undefined;
  const dir = currentDistroLink(series, release?.kernelRelease);
  const info = readJsonIfExists<DistroLabInfo>(join(dir, "ready.json"));
  return info && distroLabAt(dir, info);
}

export function requireDistroLab(series: KernelSeries, kernelRelease?: string): DistroLab {
  const lab = findDistroLab(series, kernelRelease);
  if (!lab) {
    const which = kernelRelease ? `${kernelRelease} kernel` : `${series} kernel`;
    const setup = kernelRelease ? `--distro ${series} --release ${kernelRelease}` : `--distro ${series}`;
    throw new KpatchError(
      "LAB_NOT_SET_UP",
      `Cannot use the stock Debian ${which}: it is not set up; run 'kpatch-lab setup ${setup}'`,
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
    modulesDir: join(image.root, "lib", "modules", kernelRelease),
    headersDir: join(dir, "headers", "usr", "src", info.headers),
    sampleModule: join(dir, "sample", "livepatch-sample.ko"),
  };
}

export interface DistroSetupOptions {
  series: KernelSeries;
  /** Exactly this packaged kernel of the series (any flavour), instead of the installed source's. */
  kernelRelease?: string;
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

/**
 * Set up (or find, when nothing changed) the lab on Debian's stock kernel of a series: the
 * amd64 image at the installed linux-source version, or exactly the release asked for.
 */
export async function setupDistroLab(options: DistroSetupOptions): Promise<DistroLab> {
  const { series } = options;
  const progress = options.progress ?? new Progress();
  const release = options.kernelRelease ? seriesRelease(series, options.kernelRelease) : undefined;
  await ensurePackages(series, options.installPackages ?? true, progress);
  const sourceVersion = await packageVersion(`linux-source-${series}`);
  if (!sourceVersion) throw new KpatchError("LAB_SOURCE", `Cannot find the package linux-source-${series}`);
  const pkgs = await fetchDistroPackages(
    series,
    release ? { release } : { version: sourceVersion },
    progress,
  );
  const { version } = pkgs;
  const compiler = await compilerVersion();
  const key = createHash("sha256")
    .update(JSON.stringify([DISTRO_FORMAT, series, pkgs.image.name, version, GUEST_MODULES, compiler]))
    .digest("hex")
    .slice(0, 12);
  const dir = cachePath("lab", `distro-${series}-${key}`);
  const { kernelRelease } = pkgs;
  const modulesDir = join(pkgs.image.root, "lib", "modules", kernelRelease);

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
  if (!ready) {
    progress.begin("headers", pkgs.headers.name);
    const headersDir = await joinHeaders(pkgs, join(dir, "headers"));
    progress.end();
    progress.begin("sample", "livepatch-sample.ko against the headers");
    await buildSample(series, version, headersDir, join(dir, "sample"));
    progress.end();
  }
  const info: DistroLabInfo = ready ?? {
    series,
    key,
    sourceVersion: version,
    kernelRelease,
    image: pkgs.image.name,
    headers: pkgs.headers.name,
    compiler,
    modules: order.map((p) => guestModulePath(kernelRelease, p)),
    timings: { ...progress.timings },
    createdAt: new Date().toISOString(),
  };
  if (!ready) writeFileAtomic(join(dir, "ready.json"), `${JSON.stringify(info, null, 2)}\n`);
  await createAtomic(currentDistroLink(series, release ? kernelRelease : undefined), (tmp) =>
    symlinkSync(dir, tmp),
  );
  const lab = distroLabAt(dir, info);
  if (!lab) throw new KpatchError("DISTRO_IMAGE", `Cannot find ${info.image}=${version} in the cache`);
  if (ready) progress.note(`stock ${series} kernel ready (cached): ${kernelRelease}, ${dir}`);
  return lab;
}

const SAMPLE_PATH = "samples/livepatch/livepatch-sample.c";

/** The kernel's livepatch-sample.c: from the unpacked lab source when there, else the tarball. */
async function sampleSource(series: KernelSeries, version: string): Promise<string> {
  const unpacked = cachePath("src", version, `linux-source-${series}`, SAMPLE_PATH);
  if (existsSync(unpacked)) return readFileSync(unpacked, "utf8");
  const tarball = `/usr/src/linux-source-${series}.tar.xz`;
  const r = await execCheck("tar", ["-xJOf", tarball, `linux-source-${series}/${SAMPLE_PATH}`], {
    what: `tar -x ${SAMPLE_PATH} from ${tarball}`,
  });
  return r.stdout;
}

/** livepatch-sample.ko built as an out-of-tree module against `headersDir`, at `out` (complete or absent). */
async function buildSample(series: KernelSeries, version: string, headersDir: string, out: string) {
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(join(tmp, "livepatch-sample.c"), await sampleSource(series, version));
    writeFileSync(join(tmp, "Kbuild"), "obj-m := livepatch-sample.o\n");
    const r = await exec("make", ["-C", headersDir, `M=${tmp}`, "modules"]);
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
