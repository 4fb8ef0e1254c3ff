/**
 * What a Debian stable update changed in the kernel's source: two unpacked linux-source trees
 * compared file by file (diff -rq), and one unified patch per changed file, in the form
 * kpatch-build applies (a/ and b/ paths, patch -p1). The trees are Debian's source packages,
 * which never change once unpacked, so the comparison is cached per pair of versions.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { KpatchError } from "../../util/errors.js";
import { exec } from "../../util/exec.js";

/** The files of the update, relative to the tree, each list sorted. */
export interface UpdateChanges {
  /** Changed .c files: one fix each. */
  sources: string[];
  /** Changed headers (.h): a fix may need those it includes. */
  headers: string[];
  /** Other changed files (Makefiles, Kconfig, .S, docs): never a live patch by themselves. */
  other: string[];
  /** Files or directories only in the new tree (a new object cannot be patched in live). */
  added: string[];
  /** Files or directories only in the old tree. */
  removed: string[];
}

/** Directories of the tree no kernel object is built from. */
const NOT_KERNEL = /^(Documentation|tools|samples|debian|LICENSES|scripts)\//;

/** Parses `diff -rq OLD NEW`'s report into the update's files. */
export function parseDiffReport(text: string, oldDir: string, newDir: string): UpdateChanges {
  const out: UpdateChanges = { sources: [], headers: [], other: [], added: [], removed: [] };
  const rel = (path: string, dir: string) => (path === dir ? "" : path.slice(dir.length + 1));
  for (const line of text.split("\n")) {
    let m = /^Files (.+) and (.+) differ$/.exec(line);
    if (m && m[1]!.startsWith(`${oldDir}/`)) {
      const file = rel(m[1]!, oldDir);
      if (NOT_KERNEL.test(file)) out.other.push(file);
      else if (file.endsWith(".c")) out.sources.push(file);
      else if (file.endsWith(".h")) out.headers.push(file);
      else out.other.push(file);
      continue;
    }
    m = /^Only in (.+): (.+)$/.exec(line);
    if (m) {
      const [dir, name] = [m[1]!, m[2]!];
      if (dir === newDir || dir.startsWith(`${newDir}/`)) out.added.push(join2(rel(dir, newDir), name));
      else if (dir === oldDir || dir.startsWith(`${oldDir}/`))
        out.removed.push(join2(rel(dir, oldDir), name));
    }
  }
  for (const list of Object.values(out)) list.sort();
  return out;
}

function join2(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

/** The update between two unpacked trees, from `cacheFile` when an earlier run compared them. */
export async function updateChanges(
  oldDir: string,
  newDir: string,
  cacheFile: string,
): Promise<UpdateChanges> {
  if (existsSync(cacheFile)) return JSON.parse(readFileSync(cacheFile, "utf8")) as UpdateChanges;
  // Exit status 1 means "differences found"; 2 is trouble.
  const r = await exec("diff", ["-rq", "--no-dereference", oldDir, newDir]);
  if (r.code !== 0 && r.code !== 1) {
    throw new KpatchError("TRIAGE_SOURCE", `Cannot compare ${oldDir} with ${newDir}: ${r.stderr.trim()}`);
  }
  const changes = parseDiffReport(r.stdout, oldDir, newDir);
  writeFileAtomic(cacheFile, JSON.stringify(changes));
  return changes;
}

/** One unified patch (a/FILE b/FILE, -p1) changing `files` from the old tree to the new. */
export async function filesPatch(oldDir: string, newDir: string, files: readonly string[]): Promise<string> {
  let text = "";
  for (const file of files) {
    const r = await exec("diff", [
      "-u",
      "--label",
      `a/${file}`,
      "--label",
      `b/${file}`,
      `${oldDir}/${file}`,
      `${newDir}/${file}`,
    ]);
    if (r.code !== 1) {
      throw new KpatchError(
        "TRIAGE_SOURCE",
        `Cannot make a patch of ${file}: ${r.stderr.trim() || "no difference"}`,
      );
    }
    text += r.stdout;
  }
  return text;
}
