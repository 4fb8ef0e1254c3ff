/**
 * The Debian packages of a stock kernel for the lab: the linux-image-<KVER>-unsigned package
 * whose version is the installed linux-source-<series>'s (found through apt by version, never
 * by a hard-coded ABI name), and linux-headers-<KVER> with the two packages it needs to build
 * a module (linux-headers-<base>-common, linux-kbuild-<base>), all fetched into the cache by
 * src/debian. The headers are joined into one tree (hard links) so an out-of-tree module builds
 * against them without installing anything under /usr/src.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AptState } from "../debian/apt-state.js";
import { waitForAptLists } from "../debian/apt-update.js";
import { type DebianPackage, fetchDebianPackage, findDebianPackage } from "../debian/debian-package.js";
import { type DistroRelease, imageRelease, parseMadison, releasePackages } from "../debian/kernel-release.js";
import { syncDir } from "../util/atomic-write.js";
import { KpatchError } from "../util/errors.js";
import { exec, execCheck } from "../util/exec.js";
import type { Progress } from "../util/progress.js";
import type { KernelSeries } from "./paths.js";

export interface DistroPackages {
  /** As `uname -r` prints it: 6.12.117+deb12-amd64, 6.1.0-57-amd64. */
  kernelRelease: string;
  /** The Debian version of the image (and of the headers packages). */
  version: string;
  image: DebianPackage;
  headers: DebianPackage;
  common: DebianPackage;
  /** linux-kbuild-* at the image's version, or why there is none (then no module is built). */
  kbuild: DebianPackage | { absent: string };
}

/** The Debian flavour the lab boots when none is asked for. */
const DEFAULT_FLAVOUR = "amd64";

/**
 * The linux-image-*-<flavour>-unsigned package of `series` at exactly `version`: apt's names of
 * the series' images, then their versions, and the one at `version`. Throws DISTRO_NO_IMAGE.
 */
export async function findImagePackage(
  series: KernelSeries,
  version: string,
  options: { flavour?: string; apt?: AptState } = {},
): Promise<string> {
  const flavour = options.flavour ?? DEFAULT_FLAVOUR;
  const aptOptions = options.apt?.options ?? [];
  const search = await execCheck(
    "apt-cache",
    [
      ...aptOptions,
      "search",
      "--names-only",
      `^linux-image-${series.replace(".", "\\.")}\\..*-amd64-unsigned$`,
    ],
    { what: "apt-cache search" },
  );
  const names = search.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => {
      const release = imageRelease(n);
      return release?.series === series && release.flavour === flavour;
    });
  const madison = names.length ? await exec("apt-cache", [...aptOptions, "madison", ...names]) : undefined;
  const rows = madison ? parseMadison(madison.stdout) : [];
  const found = [...new Set(rows.filter((r) => r.version === version).map((r) => r.pkg))];
  if (found.length !== 1) {
    const why = found.length
      ? `several: ${found.join(", ")}`
      : "apt knows none (apt-get update may be needed)";
    throw new KpatchError(
      "DISTRO_NO_IMAGE",
      `Cannot find Debian's ${series} ${flavour} kernel image at version ${version} (the linux-source-${series} version): ${why}`,
    );
  }
  return found[0]!;
}

/**
 * The package names a headers .deb depends on for kbuild: its -common (-common-rt for the -rt
 * flavour, whose featureset changes the headers) and linux-kbuild-*.
 */
export function headersDependencies(depends: string, headers: string): { common: string; kbuild: string } {
  const names = depends.split(/[,|]/).map((d) => d.trim().split(/\s/)[0] ?? "");
  const common = names.find((n) => /^linux-headers-\S+-common(?:-rt)?$/.test(n));
  const kbuild = names.find((n) => /^linux-kbuild-\S+$/.test(n));
  if (!common || !kbuild) {
    throw new KpatchError(
      "DISTRO_HEADERS",
      `Cannot use ${headers}: its Depends names no linux-headers-*-common and linux-kbuild-* (${depends})`,
    );
  }
  return { common, kbuild };
}

/**
 * The newest version apt offers of the image package of `release` (a release's name is one
 * build on 6.12; on 6.1 an ABI name may have had several). Throws DISTRO_NO_IMAGE.
 */
async function releaseImageVersion(
  release: DistroRelease,
  apt: AptState | undefined,
): Promise<{ name: string; version: string }> {
  const name = releasePackages(release).image;
  const r = await exec("apt-cache", [...(apt?.options ?? []), "madison", name]);
  const version = parseMadison(r.stdout).find((row) => row.pkg === name)?.version;
  if (!version) {
    throw new KpatchError(
      "DISTRO_NO_IMAGE",
      `Cannot find ${name} (Debian's ${release.kernelRelease}): apt knows none (apt-get update may be needed)`,
    );
  }
  return { name, version };
}

/** The image package (name and version) that `which` asks for: by source version, or a release. */
async function findImage(
  series: KernelSeries,
  which: { version: string } | { release: DistroRelease },
  apt: AptState | undefined,
): Promise<{ name: string; version: string }> {
  if ("release" in which) return releaseImageVersion(which.release, apt);
  return { name: await findImagePackage(series, which.version, apt ? { apt } : {}), version: which.version };
}

/**
 * Image, headers, headers-common and kbuild of `series`, fetched once into the cache: at the
 * source `version` (the amd64 flavour), or exactly the packaged kernel `release` names.
 */
export async function fetchDistroPackages(
  series: KernelSeries,
  which: { version: string } | { release: DistroRelease },
  progress: Progress,
  /** apt for the kernel's suite when it is not this machine's (src/debian/apt-state.ts). */
  apt?: AptState,
): Promise<DistroPackages> {
  progress.begin(
    "packages",
    `Debian's ${series} kernel ${"release" in which ? which.release.kernelRelease : `at ${which.version}`}`,
  );
  let found: { name: string; version: string };
  try {
    found = await findImage(series, which, apt);
  } catch (e) {
    // A fresh machine's apt lists may not know the security suite's images yet: update once.
    if ((e as KpatchError).code !== "DISTRO_NO_IMAGE" || process.getuid?.() !== 0) throw e;
    progress.update("apt-get update");
    if (!apt?.options.length)
      await execCheck("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-q"], {
        what: "apt-get update",
        run: waitForAptLists,
      });
    else await apt.refresh(progress);
    found = await findImage(series, which, apt);
  }
  const { name: imageName, version } = found;
  const kernelRelease = imageRelease(imageName)!.kernelRelease;
  const fetch = (name: string) => {
    progress.update(`${name}=${version}`);
    return fetchDebianPackage(name, version, apt?.options);
  };
  const image = await fetch(imageName);
  const headers = await fetch(`linux-headers-${kernelRelease}`);
  const r = await execCheck("dpkg-deb", ["--field", headers.deb, "Depends"], { what: "dpkg-deb --field" });
  const deps = headersDependencies(r.stdout.trim(), headers.name);
  const common = await fetch(deps.common);
  const kbuild =
    findDebianPackage(deps.kbuild, version) ?? (await fetchKbuild(deps.kbuild, version, apt, fetch));
  for (const f of [`boot/vmlinuz-${kernelRelease}`, `boot/config-${kernelRelease}`]) {
    if (!existsSync(join(image.root, f)))
      throw new KpatchError("DISTRO_IMAGE", `Cannot use ${image.name}=${version}: it has no /${f}`);
  }
  progress.end(`${imageName} ${version}`);
  return { kernelRelease, version, image, headers, common, kbuild };
}

/**
 * Why `name` at exactly `version` cannot be had, when apt's `madison` rows of it lack that version
 * (one linux-kbuild-6.1 serves every 6.1 ABI name: the next update replaces it in the suite);
 * undefined when apt offers it. The headers' Depends accept a newer kbuild (>=), but a module is
 * built only with its own kernel's: another version's is named, never used.
 */
export function kbuildGone(name: string, version: string, madison: string): string | undefined {
  const offered = parseMadison(madison)
    .filter((r) => r.pkg === name)
    .map((r) => r.version);
  if (offered.includes(version)) return undefined;
  return `${name}=${version} is gone from apt (it offers ${offered.join(", ") || "no version"}; another version's kbuild is never used for a module build)`;
}

/** The kbuild package at the image's version, or why apt no longer has it (other failures throw). */
async function fetchKbuild(
  name: string,
  version: string,
  apt: AptState | undefined,
  fetch: (name: string) => Promise<DebianPackage>,
): Promise<DebianPackage | { absent: string }> {
  const r = await exec("apt-cache", [...(apt?.options ?? []), "madison", name]);
  const gone = r.code === 0 ? kbuildGone(name, version, r.stdout) : undefined;
  return gone ? { absent: gone } : fetch(name);
}

/**
 * One tree of the headers packages as dpkg would install them, at `out` (complete or absent):
 * hard links to the cached files, and the headers' Makefile pointed at this tree's -common
 * instead of /usr/src. Returns the directory to build modules against (make -C DIR M=...).
 */
export async function joinHeaders(
  pkgs: DistroPackages & { kbuild: DebianPackage },
  out: string,
): Promise<string> {
  const buildDir = join(out, "usr", "src", `linux-headers-${pkgs.kernelRelease}`);
  if (existsSync(out)) return buildDir;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    for (const p of [pkgs.headers, pkgs.common, pkgs.kbuild]) {
      const r = await exec("cp", ["-al", join(p.root, "usr"), `${tmp}/`]);
      // Another filesystem: copy instead of linking.
      if (r.code !== 0)
        await execCheck("cp", ["-a", join(p.root, "usr"), `${tmp}/`], { what: `copy ${p.name}` });
    }
    const makefile = join(tmp, "usr", "src", `linux-headers-${pkgs.kernelRelease}`, "Makefile");
    const include = /^include \/usr\/src\/(linux-headers-[^/\s]+-common(?:-rt)?)\/Makefile$/m.exec(
      readFileSync(makefile, "utf8"),
    );
    if (!include) {
      throw new KpatchError(
        "DISTRO_HEADERS",
        `Cannot use ${pkgs.headers.name}: its Makefile includes no -common`,
      );
    }
    // Unlink first: the file is a hard link to the cached package.
    unlinkSync(makefile);
    writeFileSync(makefile, `include ${join(out, "usr", "src", include[1]!, "Makefile")}\n`);
    renameSync(tmp, out);
    syncDir(join(out, ".."));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return buildDir;
}
