/**
 * A Debian kernel release as `uname -r` prints it (6.12.117+deb12-amd64, 6.1.0-57-amd64), and
 * the Debian packages that hold what kpatch-build needs for it: the image (vmlinuz, config,
 * modules), the headers (Module.symvers with CRCs, the BTF base vmlinux, the full .config) and
 * the source of its series (Debian's patched tree). The release is checked before it names a
 * path or a package: only the shapes Debian uses pass.
 */
import { existsSync, readFileSync } from "node:fs";
import { KpatchError } from "../util/errors.js";

export interface DistroRelease {
  /** As uname -r prints it. */
  kver: string;
  /** The source series: "6.12", "6.1". */
  series: string;
  /** The upstream version the release's name says, when it says one (6.12.117; not for 6.1.0-57). */
  upstream?: string;
  flavour: string;
}

/** 6.12.117+deb12-amd64 (upstream version in the name) or 6.1.0-57-amd64 (ABI number). */
const KVER = /^(\d+)\.(\d+)\.(\d+)(?:\+deb(\d+)|-(\d+))-((?:cloud-|rt-)?amd64)$/;

export function parseRelease(kver: string): DistroRelease {
  const m = KVER.exec(kver);
  if (!m) {
    throw new KpatchError(
      "DISTRO_BAD_RELEASE",
      `Cannot use '${kver}' as a Debian kernel release: expected the form uname -r prints for a Debian amd64 kernel, such as 6.12.117+deb12-amd64 or 6.1.0-57-amd64`,
    );
  }
  const series = `${m[1]}.${m[2]}`;
  return {
    kver,
    series,
    ...(m[4] !== undefined ? { upstream: `${m[1]}.${m[2]}.${m[3]}` } : {}),
    flavour: m[6]!,
  };
}

/** The Debian package names for a release. */
export function releasePackages(r: DistroRelease): { image: string; headers: string; source: string } {
  return {
    image: `linux-image-${r.kver}-unsigned`,
    headers: `linux-headers-${r.kver}`,
    source: `linux-source-${r.series}`,
  };
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
  if (!KVER.test(uname)) return { why: `the running kernel ${uname} is not a Debian packaged kernel` };
  const config = `${bootDir}/config-${uname}`;
  if (!existsSync(config)) return { why: `the running kernel ${uname} has no ${config}` };
  if (!/^# Linux\/x86 \S+ Kernel Configuration$/m.test(readFileSync(config, "utf8").slice(0, 400))) {
    return { why: `${config} is not a kernel configuration` };
  }
  return { release: parseRelease(uname) };
}
