/**
 * kpatch-build's target for a stock Debian kernel (`--kernel-release KVER`, or the running
 * kernel): the packages (src/debian/kernel-packages.ts), the prepared tree (distro-tree), the
 * objects a patch reaches (kbuild's index of the whole config: touched-objects.ts), the kernel's own symbols
 * (/proc/kallsyms on the target, else the kallsyms tables of the image, or a -dbg vmlinux given
 * with -v), and the image's modules as the targets' symbol tables. The result is a KernelTree like any other.
 */
import { existsSync, readFileSync } from "node:fs";
import { release as unameRelease } from "node:os";
import { join } from "node:path";
import { findImageModule, readModule } from "../../debian/image-modules.js";
import { findDistroInputs } from "../../debian/kernel-packages.js";
import {
  type DistroRelease,
  parseRelease,
  runningDebianKernel,
  unbuildableReason,
} from "../../debian/kernel-release.js";
import { extractVmlinux } from "../../kernel-image/index.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { KpatchError } from "../../util/errors.js";
import type { Progress } from "../../util/progress.js";
import type { KernelTree } from "../kernel-tree.js";
import { type DistroTree, prepareDistroTree } from "./distro-tree.js";
import { touchedObjects } from "./touched-objects.js";

/** The release kpatch-build targets without -s: the running kernel when Debian packaged it. */
export function defaultRelease(): { release: DistroRelease } | { why: string } {
  return runningDebianKernel(unameRelease());
}

export async function distroKernelTree(options: {
  kernelRelease: string;
  /** A vmlinux with its symbol table (the -dbg package's), instead of the image's kallsyms. */
  vmlinux?: string;
  jobs: number;
  progress: Progress;
}): Promise<KernelTree> {
  const release = parseRelease(options.kernelRelease);
  const unbuildable = unbuildableReason(release);
  if (unbuildable) {
    throw new KpatchError(
      "DISTRO_CONFIG_CHANGED",
      `Cannot build for ${release.kernelRelease}: ${unbuildable}`,
    );
  }
  const onTarget = release.kernelRelease === unameRelease();
  const inputs = await findDistroInputs(release, onTarget, options.progress);
  const tree = await prepareDistroTree(inputs, options.progress);
  const vmlinux = options.vmlinux ?? (await vmlinuxSymbols(tree, onTarget, options.progress));
  return {
    srcDir: tree.srcDir,
    buildDir: tree.buildDir,
    vmlinux,
    // The run-pre check reads the code from the image itself (the vmlinux may be a symbol list).
    image: tree.inputs.vmlinuz,
    cacheKey: `distro-${release.kernelRelease}-${tree.key}`,
    makeArgs: tree.makeArgs,
    run: tree.run,
    findObjects: (touched, progress) => touchedObjects(tree, touched, options.jobs, progress),
    moduleFile: async (target) => imageModule(tree, target),
  };
}

/**
 * Where the kernel's symbols are: the running kernel's /proc/kallsyms (vmlinux lines only, as a
 * System.map-style file) on the target, else the vmlinux extracted from the image.
 */
async function vmlinuxSymbols(tree: DistroTree, onTarget: boolean, progress: Progress): Promise<string> {
  if (onTarget) {
    const text = readFileSync("/proc/kallsyms", "utf8");
    const lines = text.split("\n").filter((l) => l && !l.includes("\t["));
    if (lines.some((l) => !l.startsWith("0000000000000000"))) {
      const file = join(tree.buildDir, "proc-kallsyms.map");
      writeFileAtomic(file, `${lines.join("\n")}\n`);
      return file;
    }
    progress.note("warning: /proc/kallsyms hides addresses (not root?); using the image's kallsyms tables");
  }
  // The vmlinux inside the vmlinuz: the differ reads its kallsyms tables and IBT seal list.
  progress.note(`reading the kernel's symbols from ${tree.inputs.vmlinuz}`);
  return extractVmlinux(tree.inputs.vmlinuz);
}

/** The image's .ko of module `target` (decompressed into the tree once), for its symbol table. */
function imageModule(tree: DistroTree, target: string): string {
  const file = findImageModule(tree.inputs.modulesDir, target);
  const out = join(tree.buildDir, "image-modules", `${target}.ko`);
  if (!existsSync(out)) writeFileAtomic(out, readModule(file));
  return out;
}
