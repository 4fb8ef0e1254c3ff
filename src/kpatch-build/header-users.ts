/**
 * The objects a header change reaches, without compiling the kernel: a textual scan of every
 * `#include` in the source tree (cached per tree) gives, transitively, the sources that may
 * include the header; the objects this config builds from those sources are the candidates.
 * The scan over-approximates on purpose (an include under an #ifdef counts, a name matches every
 * header it could resolve to); kbuild's dependency record of each candidate, written when the
 * candidate is first compiled, then confirms which objects really depend on the header.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, normalize } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";

/** Directories of the source tree no kernel object includes from. */
const SKIP_DIRS = new Set(["Documentation", "tools", "samples", "debian", ".git", "LICENSES", "usr"]);

const INCLUDE = /^[ \t]*#[ \t]*include[ \t]*[<"]([^>"\n]+)[>"]/gm;

/** file (relative to the tree) → its #include names, as written. */
export type IncludeScan = Record<string, string[]>;

export function scanIncludes(srcDir: string): IncludeScan {
  const out: IncludeScan = {};
  const walk = (rel: string): void => {
    for (const ent of readdirSync(join(srcDir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (!(rel === "" && SKIP_DIRS.has(ent.name))) walk(path);
      } else if (ent.isFile() && /\.(c|h|S)$/.test(ent.name)) {
        const names: string[] = [];
        for (const m of readFileSync(join(srcDir, path), "latin1").matchAll(INCLUDE)) names.push(m[1]!);
        if (names.length) out[path] = names;
      }
    }
  };
  walk("");
  return out;
}

/** The scan of `srcDir`, cached in `cacheFile` (the tree is Debian's source: it never changes). */
function cachedIncludeScan(srcDir: string, cacheFile: string): IncludeScan {
  if (existsSync(cacheFile)) return JSON.parse(readFileSync(cacheFile, "utf8")) as IncludeScan;
  const scan = scanIncludes(srcDir);
  writeFileAtomic(cacheFile, JSON.stringify(scan));
  return scan;
}

/** The scan of a kernel tree's source, cached in its build tree. */
export function treeIncludeScan(tree: { srcDir: string; buildDir: string }): IncludeScan {
  return cachedIncludeScan(tree.srcDir, join(tree.buildDir, "kpatch-includes.json"));
}

/**
 * Every file of the scan that may include `header` (relative to the tree), directly or through
 * other headers, `header` itself excluded. A name matches a file when it is a path suffix of it
 * (<linux/foo.h> for include/linux/foo.h, any -I dir) or resolves to it from the includer's dir.
 */
export function includersOf(scan: IncludeScan, header: string): Set<string> {
  const byBase = new Map<string, { file: string; name: string }[]>();
  for (const [file, names] of Object.entries(scan)) {
    for (const name of names) {
      const b = basename(name);
      const list = byBase.get(b);
      if (list) list.push({ file, name });
      else byBase.set(b, [{ file, name }]);
    }
  }
  const found = new Set<string>();
  const queue = [header];
  while (queue.length) {
    const x = queue.pop()!;
    for (const { file, name } of byBase.get(basename(x)) ?? []) {
      if (found.has(file) || file === header) continue;
      const clean = normalize(name);
      const relative = normalize(join(dirname(file), name));
      if (relative === x || (!clean.startsWith("../") && (x === clean || x.endsWith(`/${clean}`)))) {
        found.add(file);
        queue.push(file);
      }
    }
  }
  return found;
}
