/**
 * The kernel kpatch-build builds a patch for: its source, the kbuild output tree that built the
 * running kernel (whose .cmd records say how every object was compiled), and its vmlinux.
 * A tree given with -s (and --build-dir for an O= build), or one the lab describes (src/lab/lab-tree.ts):
 * the pipeline does not know where a tree comes from.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { KpatchError } from "../util/errors.js";
import type { Runner } from "../util/exec.js";
import type { Progress } from "../util/progress.js";
import type { KbuildObject } from "./kbuild-tree.js";

export interface KernelTree {
  srcDir: string;
  buildDir: string;
  /** The running kernel's vmlinux (symbol positions for klp relocations and sympos). */
  vmlinux: string;
  /**
   * The kernel image whose code the run-pre check compares the original build with (a vmlinuz,
   * bzImage or vmlinux); default: `vmlinux`.
   */
  image?: string;
  /** Names the tree in the cache of original objects. */
  cacheKey: string;
  /** Arguments every make in the build tree takes (a Debian kernel's CC and KERNELRELEASE). */
  makeArgs?: string[];
  /**
   * How the tree's commands run (make, the object compiles, the module build): a build root
   * holding the kernel's own compiler when this machine has another; default: here.
   */
  run?: Runner;
  /**
   * The objects the touched files (relative to the source) reach, each with a kbuild record in
   * the build tree, for a tree that has not compiled everything (a Debian kernel's); default:
   * the build tree's own kbuild records.
   */
  findObjects?: (touched: readonly string[], progress: Progress) => Promise<KernelObjects>;
  /** The file holding a module target's symbols (default: the .ko in the build tree). */
  moduleFile?: (target: string) => Promise<string>;
}

export interface KernelObjects {
  candidates: KbuildObject[];
  /** How many objects the kernel has, for the progress line. */
  total: number;
}

/**
 * A tree of the user's: `sourcedir` (kpatch's -s), `buildDir` when it was built with O=
 * (default: the source dir itself), `config` (kpatch's -c: must be the tree's own .config,
 * which is what built it), `vmlinux` (kpatch's -v, default: the build tree's).
 */
export function userTree(options: {
  sourcedir: string;
  buildDir?: string;
  config?: string;
  vmlinux?: string;
}): KernelTree {
  const srcDir = resolve(options.sourcedir);
  const buildDir = resolve(options.buildDir ?? options.sourcedir);
  if (!existsSync(join(srcDir, "Makefile"))) {
    throw new KpatchError(
      "TREE_NOT_FOUND",
      `Cannot use ${srcDir} as a kernel source tree: it has no Makefile`,
      {
        file: srcDir,
      },
    );
  }
  const config = join(buildDir, ".config");
  for (const f of [config, join(buildDir, "Module.symvers")]) {
    if (!existsSync(f)) {
      throw new KpatchError(
        "TREE_NOT_BUILT",
        `Cannot use ${buildDir}: no ${f}; kpatch-build needs the build tree that built the running kernel`,
        { file: f },
      );
    }
  }
  if (options.config && readFileSync(resolve(options.config), "utf8") !== readFileSync(config, "utf8")) {
    throw new KpatchError(
      "TREE_CONFIG_MISMATCH",
      `Cannot use ${options.config}: it differs from ${config}, the config the tree was built with`,
      { file: options.config },
    );
  }
  const vmlinux = resolve(options.vmlinux ?? join(buildDir, "vmlinux"));
  if (!existsSync(vmlinux)) {
    throw new KpatchError(
      "TREE_NOT_BUILT",
      `Cannot find the running kernel's vmlinux at ${vmlinux} (use -v)`,
      {
        file: vmlinux,
      },
    );
  }
  const cacheKey = `tree-${createHash("sha256").update(realpathSync(buildDir)).digest("hex").slice(0, 12)}`;
  return { srcDir, buildDir, vmlinux, cacheKey };
}
