/**
 * Linux 6.12+ compiles scripts/module-common.c into every external module's directory
 * (<M>/.module-common.o, Makefile.modfinal) with the same command for every module of a tree:
 * one full compile with the kernel's headers (~0.3 s of CPU) in each patch module's build. The
 * object does not depend on the directory (byte-identical across M= paths, checked on Debian's
 * 6.12.117), so the first build's copy is kept per kernel build tree:
 *
 *   <cache>/module-common/<key>/.module-common.o    as kbuild made it, its mtime kept
 *   <cache>/module-common/<key>/cmd.json            { dir, cmd }: its kbuild .cmd and the M= it named
 *
 * and put into the next module's directory with its original mtime and its .cmd (the M= path
 * replaced) before make runs. kbuild then decides as in any incremental build: if_changed_dep
 * rebuilds it unless the command line is the same and every dependency the .cmd lists (the
 * headers, include/config/*) is older; a rebuilt copy replaces the kept one. On kernels without
 * module-common.c nothing is kept.
 */
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { cachePath } from "../util/cache-dir.js";

const OBJECT = ".module-common.o";
const CMD = `.${OBJECT}.cmd`;

interface KeptCommand {
  /** The M= directory the kept object was built in (its .cmd names it). */
  dir: string;
  cmd: string;
}

function keptDir(kernelBuildDir: string, makeArgs: readonly string[]): string {
  const key = createHash("sha256")
    .update(JSON.stringify([resolve(kernelBuildDir), ...makeArgs]))
    .digest("hex")
    .slice(0, 16);
  return cachePath("module-common", key);
}

/**
 * Puts the kept .module-common.o of this tree into `dir` (a module's M= directory) for kbuild to
 * judge; returns its mtime (ms) or undefined when none is kept.
 */
export function seedModuleCommon(
  dir: string,
  kernelBuildDir: string,
  makeArgs: readonly string[],
): number | undefined {
  const kept = keptDir(kernelBuildDir, makeArgs);
  const object = join(kept, OBJECT);
  if (!existsSync(object)) return undefined;
  let saved: KeptCommand;
  try {
    saved = JSON.parse(readFileSync(join(kept, "cmd.json"), "utf8")) as KeptCommand;
  } catch {
    return undefined;
  }
  try {
    const st = statSync(object);
    copyFileSync(object, join(dir, OBJECT));
    utimesSync(join(dir, OBJECT), st.atime, st.mtime);
    writeFileSync(join(dir, CMD), saved.cmd.split(`${saved.dir}/`).join(`${dir}/`));
    return statSync(join(dir, OBJECT)).mtimeMs;
  } catch {
    // Replaced by another build while copied: kbuild compiles it.
    rmSync(join(dir, OBJECT), { force: true });
    rmSync(join(dir, CMD), { force: true });
    return undefined;
  }
}

/**
 * After a successful build in `dir`: keeps its .module-common.o when kbuild made it (none was
 * seeded, or kbuild rebuilt the seeded one), replacing the kept copy complete or not at all.
 */
export function keepModuleCommon(
  dir: string,
  kernelBuildDir: string,
  makeArgs: readonly string[],
  seededMtimeMs: number | undefined,
): void {
  const object = join(dir, OBJECT);
  if (!existsSync(object) || !existsSync(join(dir, CMD))) return;
  const st = statSync(object);
  if (seededMtimeMs !== undefined && st.mtimeMs === seededMtimeMs) return;
  const kept = keptDir(kernelBuildDir, makeArgs);
  mkdirSync(join(kept, ".."), { recursive: true });
  const tmp = mkdtempSync(`${kept}.tmp-`);
  try {
    copyFileSync(object, join(tmp, OBJECT));
    utimesSync(join(tmp, OBJECT), st.atime, st.mtime);
    const saved: KeptCommand = { dir, cmd: readFileSync(join(dir, CMD), "utf8") };
    writeFileSync(join(tmp, "cmd.json"), JSON.stringify(saved));
    rmSync(kept, { recursive: true, force: true });
    renameSync(tmp, kept);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // Another build kept its copy at the same moment: theirs is as good.
    if (!existsSync(join(kept, "cmd.json"))) throw e;
  }
}
