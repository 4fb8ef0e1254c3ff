/**
 * Debian's kernel source (the linux-source-<series> package's tarball, Debian's patches applied)
 * unpacked once into the cache, shared by the lab and kpatch-build's Debian-kernel target:
 *
 *   <cache>/src/<version>/linux-source-<series>/   the tree (.unpacked beside it when complete)
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
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

/** Whether process `pid` is alive (EPERM: alive, another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The unpacked tree of `tarball` (linux-source-<series> at `version`), unpacked on first use.
 * Complete or absent, with no lock: each run unpacks into a directory of its own beside the
 * entry (`.<version>.unpacking-<pid>-<random>`), stamps it, and renames it into place; a run that finds
 * the entry published by another meanwhile (the lab's set-up and a distro set-up at once) keeps
 * that one and drops its own.
 */
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
  const parent = dirname(top);
  const prefix = `.${basename(top)}.unpacking-`;
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    if (name.startsWith(prefix) && !alive(Number.parseInt(name.slice(prefix.length), 10))) {
      rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
  const work = join(parent, `${prefix}${process.pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(work);
  try {
    let files = 0;
    await execCheck("tar", ["-xvf", tarball, "-C", work], {
      what: `tar -xf ${tarball}`,
      onLine: () => {
        if (++files % 500 === 0) progress.update(`${files} files`, files / 90000);
      },
    });
    if (!existsSync(join(work, basename(srcDir), "Makefile"))) {
      throw new KpatchError(
        "LAB_SOURCE",
        `Cannot find ${basename(srcDir)}/Makefile after unpacking ${tarball}`,
      );
    }
    writeFileSync(join(work, basename(stamp)), `${options.version}\n`);
    // An entry without its stamp is an older kpatch-ts's unfinished unpacking: never published.
    if (existsSync(top) && !existsSync(stamp)) rmSync(top, { recursive: true, force: true });
    try {
      renameSync(work, top);
      progress.end(`${files} files`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !existsSync(stamp)) throw e;
      progress.end(`${files} files (another run's copy kept)`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return srcDir;
}
