/**
 * The compiler a Debian kernel's objects are compiled with: always the one that built it, as
 * its config names it (CONFIG_CC_VERSION_TEXT). This machine's when its `--version` says exactly
 * that; otherwise a build root of the kernel's own Debian suite holding that compiler
 * (src/debian/build-root.ts), where every command of the tree runs (make, the object
 * compiles, the module build): one compiler per patch, never two. With build roots turned off
 * (KPATCH_TS_BUILD_ROOT=off) a mismatch is refused naming both compilers.
 */
import { buildRootFor } from "../../debian/build-root.js";
import { type DistroRelease, releaseSuite } from "../../debian/kernel-release.js";
import { exec, type Runner } from "../../util/exec.js";
import type { Progress } from "../../util/progress.js";
import { compilerMismatch, compilerVersion, configCompiler } from "../check-tree.js";
import type { KernelConfig } from "../kernel-config.js";

/** The compiler of a tree and how the tree's commands run (make, the object compiles). */
export interface DistroToolchain {
  /** The program the kernel's config names (x86_64-linux-gnu-gcc-14). */
  cc: string;
  run: Runner;
  /** Where: "this machine" or "the trixie build root (<dir>)". */
  where: string;
  /** The build root's directory, when the commands run in one. */
  buildRoot?: string;
}

/** Whether build roots may be used (KPATCH_TS_BUILD_ROOT=off turns them off). */
function buildRootsOff(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(off|0|no|false)$/i.test(env["KPATCH_TS_BUILD_ROOT"] ?? "");
}

export async function distroToolchain(options: {
  config: KernelConfig;
  configPath: string;
  release: DistroRelease;
  progress: Progress;
}): Promise<DistroToolchain> {
  const { configPath } = options;
  const compiler = configCompiler(options.config, configPath);
  const found = await compilerVersion(compiler.cc);
  if (found === compiler.text) return { cc: compiler.cc, run: exec, where: "this machine" };
  if (buildRootsOff()) {
    throw await compilerMismatch(compiler, found, {
      configPath,
      why: "build roots are off (KPATCH_TS_BUILD_ROOT=off): nothing built",
    });
  }
  if (process.getuid?.() !== 0) {
    throw await compilerMismatch(compiler, found, {
      configPath,
      why: "a build root with the kernel's compiler needs root (debootstrap, chroot)",
    });
  }
  const root = await buildRootFor({
    suite: releaseSuite(options.release),
    cc: compiler.cc,
    compilerText: compiler.text,
    progress: options.progress,
  });
  const inRoot = await compilerVersion(compiler.cc, root.run);
  const where = `the ${root.codename} build root (${root.root})`;
  if (inRoot !== compiler.text) throw await compilerMismatch(compiler, inRoot, { configPath, where });
  options.progress.note(`compiling with ${compiler.text} in ${where}`);
  return { cc: compiler.cc, run: root.run, where, buildRoot: root.root };
}
