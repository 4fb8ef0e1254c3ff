/**
 * A Debian kernel release as `uname -r` prints it (6.12.117+deb12-amd64, 6.1.0-57-cloud-amd64),
 * the one place that knows its shape: the flavours (amd64, cloud-amd64, rt-amd64), the package
 * names of a release, the release an image package carries, Debian's package versions of it and
 * `apt-cache madison`'s rows. A release is checked before it names a path or a package: only the
 * shapes Debian uses pass.
 */
import { existsSync, readFileSync } from "node:fs";
import { KpatchError } from "../util/errors.js";

export interface DistroRelease {
  /** As uname -r prints it. */
  kernelRelease: string;
  /** The source series: "6.12", "6.1". */
  series: string;
  /** The upstream version the release's name says, when it says one (6.12.117; not for 6.1.0-57). */
  upstream?: string;
  /** amd64, cloud-amd64 or rt-amd64. */
  flavour: string;
  /** The Debian release it was built for: 13 for +deb13, 12 for +deb12 and for 6.1.0-N. */
  debian: number;
}

/** A Debian release's codename and the suites its kernels are published in. */
export interface DebianSuite {
  debian: number;
  codename: string;
  /** The release suite and its security suite, where newer builds of one release land. */
  suites: string[];
}

/** The Debian releases whose kernels kpatch-build knows, by number. */
const CODENAMES: Record<number, string> = { 12: "bookworm", 13: "trixie" };

/** 6.12.117+deb12-amd64 (upstream version in the name) or 6.1.0-57-amd64 (ABI number). */
const KERNEL_RELEASE = /^(\d+)\.(\d+)\.(\d+)(?:\+deb(\d+)|-(\d+))-((?:cloud-|rt-)?amd64)$/;

/** The release `kernelRelease` names, or undefined when it is not a Debian amd64 release. */
function findRelease(kernelRelease: string): DistroRelease | undefined {
  const m = KERNEL_RELEASE.exec(kernelRelease);
  if (!m) return undefined;
  return {
    kernelRelease,
    series: `${m[1]}.${m[2]}`,
    ...(m[4] !== undefined ? { upstream: `${m[1]}.${m[2]}.${m[3]}` } : {}),
    flavour: m[6]!,
    // 6.1.0-N is Debian 12's naming (its kernels carry no +debN).
    debian: m[4] !== undefined ? Number(m[4]) : 12,
  };
}

/** The suites a release's packages are in (+deb13: trixie, trixie-security); DISTRO_BAD_RELEASE for an unknown release. */
/** The suite named `codename` (bookworm, trixie); DISTRO_BAD_RELEASE for one kpatch-build does not know. */
export function codenameSuite(codename: string): DebianSuite {
  const debian = Number(Object.entries(CODENAMES).find(([, c]) => c === codename)?.[0]);
  if (!debian) {
    throw new KpatchError(
      "DISTRO_BAD_RELEASE",
      `Cannot use Debian suite '${codename}': kpatch-ts knows ${Object.values(CODENAMES).join(" and ")}`,
    );
  }
  return { debian, codename, suites: [codename, `${codename}-security`] };
}

export function releaseSuite(release: Pick<DistroRelease, "kernelRelease" | "debian">): DebianSuite {
  const codename = CODENAMES[release.debian];
  if (!codename) {
    throw new KpatchError(
      "DISTRO_BAD_RELEASE",
      `Cannot tell which Debian suite ${release.kernelRelease} is in: kpatch-build knows Debian ${Object.keys(CODENAMES).join(" and ")} (+deb12: bookworm, +deb13: trixie)`,
    );
  }
  return { debian: release.debian, codename, suites: [codename, `${codename}-security`] };
}

/** The release `kernelRelease` names; a DISTRO_BAD_RELEASE error when it is not Debian's. */
export function parseRelease(kernelRelease: string): DistroRelease {
  const release = findRelease(kernelRelease);
  if (!release) {
    throw new KpatchError(
      "DISTRO_BAD_RELEASE",
      `Cannot use '${kernelRelease}' as a Debian kernel release: expected the form uname -r prints for a Debian amd64 kernel, such as 6.12.117+deb12-amd64, 6.12.117+deb12-cloud-amd64 or 6.1.0-57-amd64`,
    );
  }
  return release;
}

/**
 * Why kpatch-build cannot reproduce a release's kernel from linux-source-<series>, or undefined
 * when it can. Debian builds its -rt flavour from the linux source package with the RT
 * featureset's patches (debian/patches-rt) applied; the linux-source package's tree has the
 * common patches only, so the -rt config does not fit it (make olddefconfig changes
 * PREEMPT_LAZY, PREEMPT_DYNAMIC and more) and its code would differ.
 */
export function unbuildableReason(release: DistroRelease): string | undefined {
  if (release.flavour !== "rt-amd64") return undefined;
  return `Debian builds the -rt flavour with the RT featureset's patches (debian/patches-rt of the linux source package), which linux-source-${release.series} does not contain, so its config and code cannot be reproduced from it (make olddefconfig changes PREEMPT_LAZY, PREEMPT_DYNAMIC and more)`;
}

/** The Debian package names for a release. */
export function releasePackages(r: DistroRelease): { image: string; headers: string; source: string } {
  return {
    image: `linux-image-${r.kernelRelease}-unsigned`,
    headers: `linux-headers-${r.kernelRelease}`,
    source: `linux-source-${r.series}`,
  };
}

/** The release an image package (linux-image-<KVER>-unsigned) carries, when it is a Debian release. */
export function imageRelease(pkg: string): DistroRelease | undefined {
  const m = /^linux-image-(\S+)-unsigned$/.exec(pkg);
  return m ? findRelease(m[1]!) : undefined;
}

/** The upstream version of a Debian package version: 6.12.117 of 6.12.117-1~deb12u1. */
export function upstreamVersion(debianVersion: string): string {
  return debianVersion.replace(/-[^-]*$/, "");
}

/** Rows of `apt-cache madison`: package | version | source. */
export function parseMadison(text: string): { pkg: string; version: string }[] {
  return text
    .split("\n")
    .map((l) => l.split("|").map((f) => f.trim()))
    .filter((f) => f.length >= 3 && f[0] && f[1])
    .map((f) => ({ pkg: f[0]!, version: f[1]! }));
}

/**
 * Whether the running kernel is one of Debian's packaged kernels: its release has Debian's shape
 * and its config (in /boot) is one a Debian package installed. Returns the release, or a
 * sentence saying why not (for the message when kpatch-build falls back to another target).
 */
export function runningDebianKernel(
  uname: string,
  bootDir = "/boot",
): { release: DistroRelease } | { why: string } {
  if (!existsSync("/etc/debian_version")) return { why: "this machine is not a Debian system" };
  const release = findRelease(uname);
  if (!release) return { why: `the running kernel ${uname} is not a Debian packaged kernel` };
  const config = `${bootDir}/config-${uname}`;
  if (!existsSync(config)) return { why: `the running kernel ${uname} has no ${config}` };
  if (!/^# Linux\/x86 \S+ Kernel Configuration$/m.test(readFileSync(config, "utf8").slice(0, 400))) {
    return { why: `${config} is not a kernel configuration` };
  }
  return { release };
}
