/**
 * A kernel source tree as a build could see it, to compare before and after a kpatch-build run:
 * read holding the tree lock, since other runs may be patching the same tree meanwhile.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { touchedFiles } from "../../src/kpatch-build/patch-file.js";
import { LOCK_NAME, TreeLock } from "../../src/kpatch-build/tree-lock.js";

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

/** treeState() of `src` as no run has it patched: read holding the tree lock. */
export async function cleanTreeState(src: string, patchFile: string): Promise<string> {
  const lock = await TreeLock.acquire(src);
  try {
    return treeState(src, patchFile);
  } finally {
    lock.release();
  }
}

/**
 * The text of `file` of `src` as no run has it patched: read holding the tree lock (a
 * kpatch-build in another test file may have the file patched in place meanwhile).
 */
export async function readCleanFile(src: string, file: string): Promise<string> {
  const lock = await TreeLock.acquire(src);
  try {
    return readFileSync(join(src, file), "utf8");
  } finally {
    lock.release();
  }
}

/** The pid the tree's lock names, if it is locked. */
export function lockHolder(src: string): number | undefined {
  try {
    return JSON.parse(readFileSync(join(src, LOCK_NAME), "utf8")).pid;
  } catch {
    return undefined;
  }
}
