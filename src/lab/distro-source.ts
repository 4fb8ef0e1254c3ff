/**
 * Debian's source of a stock kernel (linux-source-<series> at exactly the kernel's version),
 * unpacked once into the cache for what needs the kernel's own tree: the livepatch selftests'
 * scripts and test modules (test/livepatch-selftests). A set-up step, `kpatch-lab setup
 * --distro S --source`; complete or absent (src/debian/kernel-source.ts):
 *
 *   <cache>/src/<version>/linux-source-<series>/   the tree (.unpacked beside it when complete)
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { hostCodename } from "../debian/apt-sources.js";
import { suiteApt } from "../debian/apt-state.js";
import { kernelSourceTarball } from "../debian/kernel-packages.js";
import { codenameSuite } from "../debian/kernel-release.js";
import { kernelSourceDir, unpackKernelSource } from "../debian/kernel-source.js";
import { KpatchError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";
import type { DistroLab } from "./distro.js";

/** The unpacked source tree of a stock kernel, or undefined when `kpatch-lab setup --source` has not made it. */
export function findDistroSource(lab: Pick<DistroLab, "series" | "sourceVersion">): string | undefined {
  const { srcDir, stamp } = kernelSourceDir(lab.series, lab.sourceVersion);
  return existsSync(stamp) && existsSync(join(srcDir, "Makefile")) ? srcDir : undefined;
}

/**
 * Fetches linux-source-<series> at the stock kernel's version (the installed one when it is that
 * version; else through the apt of the kernel's suite) and unpacks it, unless it is; its tree.
 */
export async function setupDistroSource(lab: DistroLab, progress: Progress): Promise<string> {
  const found = findDistroSource(lab);
  if (found) return found;
  const codename = lab.suite ?? hostCodename();
  if (!codename)
    throw new KpatchError("LAB_NOT_DEBIAN", "Cannot tell this machine's Debian release (/etc/os-release)");
  const apt = await suiteApt(codenameSuite(codename), progress);
  progress.begin("source", `linux-source-${lab.series} ${lab.sourceVersion}`);
  const { tarball } = await kernelSourceTarball(
    apt,
    lab.series,
    lab.sourceVersion,
    progress,
    `unpack the source of ${lab.kernelRelease}`,
  );
  progress.end(tarball);
  return unpackKernelSource({ series: lab.series, version: lab.sourceVersion, tarball, progress });
}
