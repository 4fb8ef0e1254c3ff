/**
 * Debian's kernel source (the linux-source-<series> package's tarball, Debian's patches applied)
 * unpacked once into the cache, shared by the lab and kpatch-build's Debian-kernel target:
 *
 *   <cache>/src/<version>/linux-source-<series>/   the tree (.unpacked beside it when complete)
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import type { Progress } from "../util/progress.js";
import { checkPackageVersion } from "./debian-package.js";

/** Where linux-source-<series> at `version` is unpacked, and the stamp written when it is complete. */
export function kernelSourceDir(
  series: string,
  version: string,
): { top: string; srcDir: string; stamp: string } {
  if (!/^\d+\.\d+$/.test(series)) throw new KpatchError("LAB_SOURCE", `Cannot use kernel series '${series}'`);
  const top = cachePath("src", checkPackageVersion(version));
  return { top, srcDir: join(top, `linux-source-${series}`), stamp: join(top, ".unpacked") };
}

/** The unpacked tree of `tarball` (linux-source-<series> at `version`), unpacked on first use. */
export async function unpackKernelSource(options: {
  series: string;
  version: string;
  tarball: string;
  progress: Progress;
}): Promise<string> {
  const { series, tarball, progress } = options;
  const { top, srcDir, stamp } = kernelSourceDir(series, options.version);
  progress.begin("unpack", tarball);
  if (existsSync(stamp)) {
    progress.end("cached");
    return srcDir;
  }
  rmSync(top, { recursive: true, force: true });
  mkdirSync(top, { recursive: true });
  let files = 0;
  await execCheck("tar", ["-xvf", tarball, "-C", top], {
    what: `tar -xf ${tarball}`,
    onLine: () => {
      if (++files % 500 === 0) progress.update(`${files} files`, files / 90000);
    },
  });
  if (!existsSync(join(srcDir, "Makefile"))) {
    throw new KpatchError("LAB_SOURCE", `Cannot find ${srcDir}/Makefile after unpacking ${tarball}`);
  }
  writeFileSync(stamp, `${options.version}\n`);
  progress.end(`${files} files`);
  return srcDir;
}
