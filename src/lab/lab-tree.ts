/** The lab kernel as kpatch-build sees it: one kernel tree among others. */
import { join } from "node:path";
import type { KernelTree } from "../kpatch-build/kernel-tree.js";
import type { Lab } from "./setup.js";

export function labTree(lab: Pick<Lab, "srcDir" | "buildDir" | "series" | "key">): KernelTree {
  return {
    srcDir: lab.srcDir,
    buildDir: lab.buildDir,
    vmlinux: join(lab.buildDir, "vmlinux"),
    cacheKey: `${lab.series}-${lab.key}`,
  };
}
