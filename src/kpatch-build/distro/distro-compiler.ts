/**
 * The compiler a Debian kernel's objects are compiled with: always the one that built it, as
 * its config names it (CONFIG_CC_VERSION_TEXT). This machine's when its `--version` says exactly
 * that; otherwise none, and the build is refused naming both compilers (a patch compiled by
 * another gcc is not the code the kernel runs; the run-pre check would refuse it later).
 */
import { exec, type Runner } from "../../util/exec.js";
import { compilerMismatch, compilerVersion, configCompiler } from "../check-tree.js";
import type { KernelConfig } from "../kernel-config.js";

/** The compiler of a tree and how the tree's commands run (make, the object compiles). */
export interface DistroToolchain {
  /** The program the kernel's config names (x86_64-linux-gnu-gcc-14). */
  cc: string;
  run: Runner;
}

export async function distroToolchain(config: KernelConfig, configPath: string): Promise<DistroToolchain> {
  const compiler = configCompiler(config, configPath);
  const found = await compilerVersion(compiler.cc);
  if (found === compiler.text) return { cc: compiler.cc, run: exec };
  throw await compilerMismatch(compiler, found, { configPath });
}
