/**
 * The newest Debian kernel of a release, found as kpatch-build finds packages (the release's
 * suites through apt-state.ts): tests that target "the latest in trixie-security" ask here
 * instead of naming a version that security updates will retire.
 */
import { type AptState, suiteApt } from "../../src/debian/apt-state.js";
import { candidateVersion } from "../../src/debian/kernel-packages.js";
import { releaseSuite } from "../../src/debian/kernel-release.js";
import { KpatchError } from "../../src/util/errors.js";
import { Progress } from "../../src/util/progress.js";

/**
 * The newest amd64 kernel release of Debian `debian` (13: 6.12.118+deb13-amd64 when apt's
 * candidate of linux-image-amd64 is 6.12.118-1) and the apt that found it; `skip` says why
 * there is none (no mirror reachable).
 */
export async function newestDebianKernel(
  debian: number,
): Promise<{ kernelRelease: string; version: string; apt: AptState } | { skip: string }> {
  const suite = releaseSuite({ kernelRelease: `Debian ${debian}`, debian });
  let apt: AptState;
  try {
    apt = await suiteApt(suite, new Progress({ quiet: true }));
  } catch (e) {
    if (e instanceof KpatchError && e.code === "DEBIAN_DOWNLOAD_FAILED")
      return { skip: `no Debian mirror: ${e.message}` };
    throw e;
  }
  const version = await candidateVersion(apt, "linux-image-amd64");
  if (!version) return { skip: `apt knows no linux-image-amd64 in ${suite.suites.join(", ")}` };
  return { kernelRelease: `${version.replace(/-[^-]*$/, "")}+deb${debian}-amd64`, version, apt };
}
