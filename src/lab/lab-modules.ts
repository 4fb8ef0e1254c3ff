/**
 * Kernel modules built out of tree (kbuild's M=) against a kernel's kbuild tree (a lab's build
 * tree, a stock kernel's headers tree), once: our test modules (test/fixtures/modules) and the
 * kernel's livepatch selftest modules. The result is cached under
 * <cache>/test-modules/<name>-<kernel key>-<hash>, the hash taken over the module sources and the
 * tree's .config and Module.symvers, so a changed source or a rebuilt tree builds them anew. The directory is made complete under a temporary name and renamed into
 * place: it is there whole or not at all.
 */
import { createHash } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { execCheck, type Runner } from "../util/exec.js";

export interface LabModulesOptions {
  /**
   * The kbuild tree to build against (make -C), the cache key of the setup it belongs to, and
   * where its make runs with what CC (a stock kernel's build root; default here, its gcc).
   */
  kernel: { key: string; kbuildDir: string; run?: Runner; makeArgs?: readonly string[] };
  /** A name for the set, part of the cache directory's name. */
  name: string;
  /** The directory of the sources (a Kbuild or kbuild Makefile and the .c files), not written. */
  sourceDir: string;
  /** The modules the build must make, without .ko. */
  modules: readonly string[];
  /** Variables for make's command line (CONFIG_TEST_LIVEPATCH=m). */
  makeArgs?: readonly string[];
}

/** Builds the modules of `sourceDir` against the kernel once per source or tree change; their directory. */
export async function labModules(options: LabModulesOptions): Promise<string> {
  const { kernel, name, sourceDir, modules } = options;
  const makeArgs = [...(kernel.makeArgs ?? []), ...(options.makeArgs ?? [])];
  const hash = createHash("sha256");
  for (const f of readdirSync(sourceDir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    if (f.isFile()) hash.update(`${f.name}\0`).update(readFileSync(join(sourceDir, f.name)));
  }
  if (makeArgs.length) hash.update(`${makeArgs.join(" ")}\0`);
  for (const f of [".config", "Module.symvers"]) hash.update(readFileSync(join(kernel.kbuildDir, f)));
  const dir = cachePath("test-modules", `${name}-${kernel.key}-${hash.digest("hex").slice(0, 12)}`);
  if (existsSync(dir)) return dir;
  try {
    await createAtomic(dir, async (tmp) => {
      cpSync(sourceDir, tmp, { recursive: true });
      await execCheck("make", ["-C", kernel.kbuildDir, `M=${tmp}`, "-j2", ...makeArgs, "modules"], {
        what: `make (${name} modules)`,
        ...(kernel.run ? { run: kernel.run } : {}),
      });
      const missing = modules.filter((m) => !existsSync(join(tmp, `${m}.ko`)));
      if (missing.length) {
        throw new KpatchError("EXEC_FAILED", `make (${name} modules) did not build ${missing.join(", ")}`);
      }
    });
  } catch (e) {
    // another run renamed its complete build into place first: that one is as good
    if (!existsSync(dir)) throw e;
  }
  return dir;
}
