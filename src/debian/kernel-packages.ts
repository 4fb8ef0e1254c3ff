/**
 * Finding the Debian packages of a kernel release: installed ones when they are there (building
 * on the target: /boot, /lib/modules, /usr/src), otherwise the same packages at the image's
 * version, fetched into the cache by the one Debian-package helper (debian-package.ts). The image's
 * version decides; the headers and the source must be at exactly that version.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
import type { Progress } from "../util/progress.js";
import { cachedAptAnswer } from "./apt-answers.js";
import { type AptState, suiteApt } from "./apt-state.js";
import { fetchDebianPackage } from "./debian-package.js";
import { imageModulesDir } from "./image-modules.js";
import { type DistroRelease, parseMadison, releasePackages, releaseSuite } from "./kernel-release.js";

/** Everything kpatch-build takes from Debian's packages for one kernel release. */
export interface DistroInputs {
  release: DistroRelease;
  /** Debian package versions: all three must be the same. */
  versions: { image: string; headers: string; source: string };
  /** linux-source-<series>.tar.xz of `versions.source`. */
  sourceTarball: string;
  /** /usr/src/linux-headers-<KVER> (unpacked or installed): .config, Module.symvers, vmlinux. */
  headersDir: string;
  /** config-<KVER> from the image package or /boot. */
  imageConfig: string;
  /** vmlinuz-<KVER> from the image package or /boot. */
  vmlinuz: string;
  /** (usr/)lib/modules/<KVER> of the image package (the modules a patch may target). */
  modulesDir: string;
}

/** The installed version of `pkg`, or undefined (answered from apt-answers.ts while dpkg's status is unchanged). */
async function installedVersion(apt: AptState, pkg: string): Promise<string | undefined> {
  const v = await cachedAptAnswer(apt, `installed ${pkg}`, async () => {
    // dpkg-query's own ${Field} syntax, not a template.
    const r = await exec("dpkg-query", ["-W", "-f", "$" + "{Status}\\t$" + "{Version}", pkg]);
    const [status, version] = r.stdout.split("\t");
    return r.code === 0 && status?.endsWith(" installed") && version ? version : null;
  });
  return v ?? undefined;
}

/** The version apt would fetch for `pkg` (its candidate), or undefined when apt knows none. */
export async function candidateVersion(apt: AptState, pkg: string): Promise<string | undefined> {
  const v = await cachedAptAnswer(apt, `policy ${pkg}`, async () => {
    const r = await exec("apt-cache", [...apt.options, "policy", pkg]);
    const c = /^\s*Candidate:\s*(\S+)/m.exec(r.stdout)?.[1];
    return r.code === 0 && c && c !== "(none)" ? c : null;
  });
  return v ?? undefined;
}

/** Every version apt knows of `pkg` (for the message when the one needed is missing). */
async function knownVersions(apt: AptState, pkg: string): Promise<string[]> {
  return cachedAptAnswer(apt, `madison ${pkg}`, async () => {
    const r = await exec("apt-cache", [...apt.options, "madison", pkg]);
    return parseMadison(r.stdout).map((row) => row.version);
  });
}

async function fetch(apt: AptState, pkg: string, version: string, progress: Progress): Promise<string> {
  progress.update(`${pkg}=${version}`);
  return (await fetchDebianPackage(pkg, version, apt.options)).root;
}

/**
 * On the target, the running kernel must be the installed package's build: a package upgraded
 * without a reboot keeps the release name (6.12's names carry no Debian revision) but not the
 * code. /proc/version says which Debian version is running.
 */
function checkRunningVersion(kernelRelease: string, image: string): void {
  const running = /\(Debian ([^)\s]+)\)/.exec(readFileSync("/proc/version", "utf8"))?.[1];
  if (running && running !== image) {
    throw new KpatchError(
      "DISTRO_VERSION_MISMATCH",
      `Cannot build for the running ${kernelRelease}: it is Debian's ${running}, the installed package is ${image} (reboot into it first, or build on a machine with ${running}'s packages)`,
    );
  }
}

/**
 * linux-source-<series>.tar.xz at exactly `version`: the installed one (/usr/src) when it is
 * that version, else the package fetched into the cache through `apt`. DISTRO_NO_SOURCE, saying
 * what it is needed for (`to`) and what apt offers, when apt does not offer that version.
 */
export async function kernelSourceTarball(
  apt: AptState,
  series: string,
  version: string,
  progress: Progress,
  to: string,
): Promise<{ tarball: string; version: string }> {
  const name = `linux-source-${series}`;
  const installed = await installedVersion(apt, name);
  const tarball = `/usr/src/${name}.tar.xz`;
  if (installed === version && existsSync(tarball)) return { tarball, version };
  const known = await knownVersions(apt, name);
  if (!known.includes(version)) {
    throw new KpatchError(
      "DISTRO_NO_SOURCE",
      `Cannot ${to}: it needs ${name} at ${version}, which apt does not offer (installed: ${installed ?? "none"}; available: ${known.join(", ") || "none"})`,
    );
  }
  const root = await fetch(apt, name, version, progress);
  return { tarball: join(root, "usr", "src", `${name}.tar.xz`), version };
}

/**
 * The inputs for `release`. `onTarget`: this machine runs that kernel, so /boot and /lib/modules
 * hold its image files (the image package is then not fetched).
 */
export async function findDistroInputs(
  release: DistroRelease,
  onTarget: boolean,
  progress: Progress,
): Promise<DistroInputs> {
  const { kernelRelease, series } = release;
  const names = releasePackages(release);
  progress.begin("packages", kernelRelease);
  const apt = await suiteApt(releaseSuite(release), progress);
  const installedImage =
    (await installedVersion(apt, `linux-image-${kernelRelease}`)) ??
    (await installedVersion(apt, names.image));
  const image =
    installedImage ??
    (await candidateVersion(apt, names.image)) ??
    ((await apt.refresh(progress)) ? await candidateVersion(apt, names.image) : undefined);
  if (!image) {
    throw new KpatchError(
      "DISTRO_NO_PACKAGE",
      `Cannot find ${names.image} in the package lists of ${releaseSuite(release).suites.join(", ")} (${apt.label}): no such Debian kernel, or apt-get update is needed`,
    );
  }
  if (onTarget) checkRunningVersion(kernelRelease, image);
  let boot = "/boot";
  let modulesDir = `/lib/modules/${kernelRelease}`;
  if (
    !(
      onTarget &&
      installedImage &&
      existsSync(join(boot, `config-${kernelRelease}`)) &&
      existsSync(modulesDir)
    )
  ) {
    const root = await fetch(apt, names.image, image, progress);
    boot = join(root, "boot");
    modulesDir = imageModulesDir(root, kernelRelease);
  }

  const installedHeaders = await installedVersion(apt, names.headers);
  const headersRoot =
    installedHeaders === image && existsSync(`/usr/src/${names.headers}/Module.symvers`)
      ? "/"
      : await fetch(apt, names.headers, image, progress);
  const headersVersion = headersRoot === "/" ? installedHeaders! : image;

  const source = await kernelSourceTarball(apt, series, image, progress, `build for ${kernelRelease}`);
  progress.end(`image, headers and source at ${image}`);
  return {
    release,
    versions: { image, headers: headersVersion, source: source.version },
    sourceTarball: source.tarball,
    headersDir: join(headersRoot, "usr", "src", names.headers),
    imageConfig: join(boot, `config-${kernelRelease}`),
    vmlinuz: join(boot, `vmlinuz-${kernelRelease}`),
    modulesDir,
  };
}
