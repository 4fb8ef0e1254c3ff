/**
 * kpatch-build's target for a stock Debian kernel (`--kernel-release KVER`, or the running
 * kernel): the packages (src/debian/kernel-packages.ts), the prepared tree (distro-tree), the
 * objects a patch reaches (the config's object index, header users), the kernel's own symbols
 * (/proc/kallsyms on the target, else the kallsyms tables of the image, or a -dbg vmlinux given
 * with -v), and the image's modules as the targets' symbol tables. The result is a KernelTree like any other.
 */
import { existsSync, readFileSync } from "node:fs";
import { release as unameRelease } from "node:os";
import { dirname, join } from "node:path";
import { findImageModule, readModule } from "../../debian/image-modules.js";
import { findDistroInputs } from "../../debian/kernel-packages.js";
import { type DistroRelease, parseRelease, runningDebianKernel } from "../../debian/kernel-release.js";
import { extractVmlinux } from "../../kernel-image/index.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { KpatchError } from "../../util/errors.js";
import type { Progress } from "../../util/progress.js";
import { cachedIncludeScan, includersOf } from "../header-users.js";
import { cmdFile, objectsDependingOn } from "../kbuild-tree.js";
import type { KernelObjects, KernelTree } from "../kernel-tree.js";
import {
  directoryObjects,
  fullObjectIndex,
  hasRecord,
  type IndexedObject,
  kbuildObject,
} from "./distro-objects.js";
import { type DistroTree, distroMake, prepareDistroTree } from "./distro-tree.js";

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
    findObjects: (touched, progress) => distroObjects(tree, touched, options.jobs, progress),
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

/**
 * The objects the touched files reach in this config: a touched .c/.S by its directory's
 * objects, a touched header through the textual include closure over the whole index, confirmed by kbuild's dependency records. kbuild
 * compiles each candidate once (`make obj.o`, normal flags) to leave that record.
 */
async function distroObjects(
  tree: DistroTree,
  touched: readonly string[],
  jobs: number,
  progress: Progress,
): Promise<KernelObjects> {
  progress.begin("find objects", "the objects this config builds");
  const direct: IndexedObject[] = [];
  const viaHeader: IndexedObject[] = [];
  const headers = touched.filter((f) => f.endsWith(".h"));
  const seen = new Set<string>();
  for (const f of touched) {
    if (!/\.[cS]$/.test(f)) continue;
    progress.update(`kbuild dry run of ${dirname(f)}/`);
    const objects = await directoryObjects(tree, dirname(f));
    for (const o of objects) seen.add(o.path);
    direct.push(...objects.filter((o) => o.source === f));
  }
  if (headers.length) {
    progress.update("every object this config builds (kbuild dry run, once per kernel version)");
    const index = await fullObjectIndex(tree);
    for (const o of index) seen.add(o.path);
    progress.update("include closure of the touched headers");
    const scan = cachedIncludeScan(tree.srcDir, join(tree.buildDir, "kpatch-includes.json"));
    const users = new Set<string>(headers);
    for (const h of headers) for (const f of includersOf(scan, h)) users.add(f);
    viaHeader.push(...index.filter((o) => users.has(o.source) && !direct.includes(o)));
  }
  const missing = [...direct, ...viaHeader].filter((o) => !hasRecord(tree.buildDir, o.path));
  for (let i = 0; i < missing.length; i += 200) {
    const chunk = missing.slice(i, i + 200);
    progress.update(`kbuild records: make ${i + chunk.length}/${missing.length} objects`);
    const r = await tree.run("make", distroMake(tree, `-j${jobs}`, ...chunk.map((o) => o.path)));
    if (r.code !== 0) {
      throw new KpatchError(
        "BUILD_FAILED",
        `Cannot compile the original objects with kbuild:\n${r.stderr.split("\n").slice(-15).join("\n")}`,
      );
    }
  }
  const withCmd = viaHeader.map((o) => ({
    obj: kbuildObject(o, tree.srcDir),
    cmd: readFileSync(cmdFile(tree.buildDir, o.path), "utf8"),
  }));
  const confirmed = objectsDependingOn(
    withCmd,
    headers.map((h) => join(tree.srcDir, h)),
    tree.buildDir,
  );
  const candidates = [...direct.map((o) => kbuildObject(o, tree.srcDir)), ...confirmed];
  return { candidates, total: seen.size };
}
