/**
 * The C test modules of test/fixtures/modules, built against a kernel (the lab's build tree, or a
 * stock kernel's headers tree), and the two versions of a patch package made from them.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { type LabModulesOptions, labModules } from "../../src/lab/lab-modules.js";

const FIXTURES = join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "modules");
export const TEST_MODULES = [
  "kpatch-stall-target",
  "kpatch-stall-patch",
  "kpatch-info-patch",
  "kpatch-crash",
  "kpatch-replace-v9",
  "kpatch-replace-v10",
] as const;
export type TestModule = (typeof TEST_MODULES)[number];

/**
 * Builds test/fixtures/modules against a kernel (src/lab/lab-modules.ts) once per change; their
 * paths. A stock kernel of another Debian release builds them with its own compiler in its build
 * root (src/lab/distro.ts, distroLabKbuild: Debian 13's gcc 14).
 */
export async function fixtureModules(
  kernel: LabModulesOptions["kernel"],
): Promise<Record<TestModule, string>> {
  const dir = await labModules({ kernel, name: "kpatch", sourceDir: FIXTURES, modules: TEST_MODULES });
  return Object.fromEntries(TEST_MODULES.map((m) => [m, join(dir, `${m}.ko`)])) as Record<TestModule, string>;
}

/**
 * Two versions (patch levels) of the kernel's patch package, as `kpatch package` makes them: version 1 from
 * kpatch-replace-v9, version 2 from kpatch-replace-v10 (atomic replace), into outDir; the .debs.
 * With imageVersion, they depend on that build of the kernel's image package only.
 */
export function replacePatchPackages(
  modules: Record<TestModule, string>,
  kernelRelease: string,
  outDir: string,
  maintainer: string,
  imageVersion?: string,
): { "1": string; "2": string } {
  const kpatch = join(import.meta.dirname, "..", "..", "src", "cli", "kpatch.js");
  const debs = { "1": "", "2": "" };
  for (const [m, v] of [
    ["kpatch-replace-v9", "1"],
    ["kpatch-replace-v10", "2"],
  ] as const) {
    const args = [
      kpatch,
      "package",
      "-V",
      v,
      "--maintainer",
      maintainer,
      "-o",
      outDir,
      ...(imageVersion ? ["--image-version", imageVersion] : []),
      modules[m],
    ];
    const r = spawnSync("node", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`kpatch package ${modules[m]} failed: ${r.stderr}`);
    debs[v] = join(outDir, `kpatch-patch-${kernelRelease}_${v}_amd64.deb`);
  }
  return debs;
}
