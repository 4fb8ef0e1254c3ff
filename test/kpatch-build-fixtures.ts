/**
 * What the kpatch-build CLI tests share: the lab, the command, the fixture patches of the lab's
 * series, and a way to compare the lab's source tree before and after a run.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { touchedFiles } from "../src/kpatch-build/patch-file.js";
import { LOCK_NAME, TreeLock } from "../src/kpatch-build/tree-lock.js";
import { DEFAULT_SERIES } from "../src/lab/paths.js";
import { requireLab } from "../src/lab/setup.js";

export const lab = requireLab(DEFAULT_SERIES);
export const KPATCH_BUILD = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");

/** test/fixtures/patches/<series>/<name>.patch */
export function fixturePatch(name: string): string {
  return join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", lab.series, `${name}.patch`);
}

/** Bytes, mode and mtime of each touched file, the entries of their directories, our files at the top. */
function treeState(src: string, patchFile: string): string {
  const files = touchedFiles(readFileSync(patchFile, "utf8"));
  const dirs = [...new Set(files.map((f) => dirname(f)))];
  return [
    ...files.map((f) => {
      const st = statSync(join(src, f), { bigint: true });
      return `${f} ${st.mode} ${st.mtimeNs / 1000n} ${readFileSync(join(src, f)).toString("base64")}`;
    }),
    ...dirs.map((d) => `${d}/: ${readdirSync(join(src, d)).sort().join(" ")}`),
    `top: ${readdirSync(src)
      .filter((n) => n.includes("kpatch"))
      .join(" ")}`,
  ].join("\n");
}

/**
 * treeState() of the lab's source tree as no run has it patched: read holding the tree lock
 * (other engineers' runs may be patching the same tree meanwhile).
 */
export async function cleanTreeState(patchFile: string): Promise<string> {
  const lock = await TreeLock.acquire(lab.srcDir);
  try {
    return treeState(lab.srcDir, patchFile);
  } finally {
    lock.release();
  }
}

/** The pid the lab tree's lock names, if it is locked. */
export function lockHolder(): number | undefined {
  try {
    return JSON.parse(readFileSync(join(lab.srcDir, LOCK_NAME), "utf8")).pid;
  } catch {
    return undefined;
  }
}
