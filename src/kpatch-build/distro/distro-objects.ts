/**
 * Which objects a Debian kernel's config builds, and for which target (vmlinux or a module),
 * learnt from kbuild itself without compiling: a dry run (`make -n -k vmlinux modules`) over the
 * prepared tree prints every compile command kbuild would run, with its `CC [M]` marker and
 * KBUILD_MODNAME. The index is written once per prepared tree. An object's .cmd record (how
 * kbuild compiles it, what it depends on) appears when kbuild's single-object rule first
 * compiles it (`make fs/ext4/inode.o`); kpatch-build's object compiles read that record.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { KpatchError } from "../../util/errors.js";
import type { Runner } from "../../util/exec.js";
import { normalizeModuleName } from "../../util/module-name.js";
import { cmdFile, type KbuildObject, parseKbuildCmd } from "../kbuild-tree.js";

export interface IndexedObject {
  /** Relative to the build tree, e.g. "fs/ext4/inode.o". */
  path: string;
  /** Relative to the source tree, e.g. "fs/ext4/inode.c". */
  source: string;
  target: string;
}

const INDEX = "kpatch-objects.json";

/** Objects that never reach a patchable text: boot and real-mode code, the vDSO. */
const NOT_PATCHABLE = /^arch\/x86\/(boot|realmode|entry\/vdso)\//;

/** The object one line of a dry-run transcript compiles (one shell command per line), if any. */
export function parseDryRunLine(line: string, srcDir: string): IndexedObject | undefined {
  const m = /echo ' {2}(?:CC|AS)( \[M\])?\s+(\S+\.o)'/.exec(line);
  if (!m || !line.includes("-D__KERNEL__")) return undefined;
  const path = m[2]!;
  if (path.endsWith(".mod.o") || NOT_PATCHABLE.test(path)) return undefined;
  const esc = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const src = new RegExp(` -c -o ${esc} (\\S+\\.[cS])(?=\\s|;|$)`).exec(line)?.[1];
  if (!src) return undefined;
  const prefix = `${srcDir.replace(/\/$/, "")}/`;
  const source = src.startsWith(prefix) ? src.slice(prefix.length) : src.replace(/^\.\//, "");
  if (!m[1]) return { path, source, target: "vmlinux" };
  const mod = /-DKBUILD_MODNAME='"([\w-]+)"'/.exec(line)?.[1];
  return mod ? { path, source, target: normalizeModuleName(mod) } : undefined;
}

/** Run kbuild's dry run over `tree` and write the index; returns the number of objects. */
async function buildObjectIndex(tree: {
  srcDir: string;
  buildDir: string;
  makeArgs: string[];
  run: Runner;
}): Promise<number> {
  // -k: the certs/ step wants Debian's signing key, which no one has; the rest is unaffected.
  const found = new Map<string, IndexedObject>();
  const r = await tree.run(
    "make",
    ["-C", tree.srcDir, `O=${tree.buildDir}`, ...tree.makeArgs, "-n", "-k", "vmlinux", "modules"],
    {
      maxBuffer: 1 << 16,
      onLine: (line, stream) => {
        const o = stream === "stdout" ? parseDryRunLine(line, tree.srcDir) : undefined;
        if (o) found.set(o.path, o);
      },
    },
  );
  // A dry run names only what is out of date: the objects kbuild compiled already come from
  // their records (a header change must find those too).
  for (const o of recordedObjects(tree)) if (!found.has(o.path)) found.set(o.path, o);
  const objects = [...found.values()].sort((a, b) => a.path.localeCompare(b.path));
  if (objects.length < 1000) {
    throw new KpatchError(
      "DISTRO_INDEX",
      `Cannot list the objects of ${tree.buildDir}: kbuild's dry run named ${objects.length} (make exited ${r.code}):\n${r.stderr.split("\n").slice(-10).join("\n")}`,
    );
  }
  writeFileAtomic(join(tree.buildDir, INDEX), JSON.stringify(objects));
  return objects.length;
}

/** Every kernel object kbuild has compiled in the tree (its .cmd records), `dir` and below. */
function recordedObjects(tree: { buildDir: string; srcDir: string }, dir = ""): IndexedObject[] {
  const out: IndexedObject[] = [];
  const at = join(tree.buildDir, dir);
  for (const ent of existsSync(at) ? readdirSync(at, { withFileTypes: true }) : []) {
    const rel = dir ? `${dir}/${ent.name}` : ent.name;
    if (ent.isDirectory()) {
      if (ent.name !== "source" && !ent.name.startsWith("kpatch-")) out.push(...recordedObjects(tree, rel));
      continue;
    }
    const m = /^\.(.+\.o)\.cmd$/.exec(ent.name);
    const o = m ? recordedObject(tree, dir ? `${dir}/${m[1]}` : m[1]!) : undefined;
    if (o && !o.path.endsWith(".mod.o") && !NOT_PATCHABLE.test(o.path)) out.push(o);
  }
  return out;
}

/** The object a kbuild record in the tree describes, when it is a kernel object. */
function recordedObject(tree: { buildDir: string; srcDir: string }, path: string): IndexedObject | undefined {
  const { command, source } = parseKbuildCmd(readFileSync(cmdFile(tree.buildDir, path), "utf8"), path);
  if (!command?.includes("-D__KERNEL__") || !source || !/\.[cS]$/.test(source)) return undefined;
  const prefix = `${tree.srcDir.replace(/\/$/, "")}/`;
  const rel = source.startsWith(prefix) ? source.slice(prefix.length) : source;
  if (!/\s-DMODULE(\s|$)/.test(command)) return { path, source: rel, target: "vmlinux" };
  const mod = /-DKBUILD_MODNAME='"([\w-]+)"'/.exec(command)?.[1];
  return mod ? { path, source: rel, target: normalizeModuleName(mod) } : undefined;
}

/**
 * The objects this config builds in the source directory `dir` (relative): the whole index when
 * it exists, else kbuild's dry run of that directory alone (seconds, not minutes), together with
 * the objects kbuild has compiled there already (a dry run names only what is out of date).
 * Cached per directory.
 */
export async function directoryObjects(
  tree: { srcDir: string; buildDir: string; makeArgs: string[]; run: Runner },
  dir: string,
): Promise<IndexedObject[]> {
  if (existsSync(join(tree.buildDir, INDEX))) return loadObjectIndex(tree.buildDir);
  const cache = join(tree.buildDir, "kpatch-objects.d", `${dir.replace(/\//g, "%")}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, "utf8")) as IndexedObject[];
  const found = new Map<string, IndexedObject>();
  await tree.run("make", ["-C", tree.srcDir, `O=${tree.buildDir}`, ...tree.makeArgs, "-n", "-k", `${dir}/`], {
    maxBuffer: 1 << 16,
    onLine: (line, stream) => {
      const o = stream === "stdout" ? parseDryRunLine(line, tree.srcDir) : undefined;
      if (o) found.set(o.path, o);
    },
  });
  const built = join(tree.buildDir, dir);
  for (const f of existsSync(built) ? readdirSync(built) : []) {
    const m = /^\.(.+\.o)\.cmd$/.exec(f);
    const o = m ? recordedObject(tree, `${dir}/${m[1]}`) : undefined;
    if (o && !found.has(o.path)) found.set(o.path, o);
  }
  const objects = [...found.values()].sort((a, b) => a.path.localeCompare(b.path));
  writeFileAtomic(cache, JSON.stringify(objects));
  return objects;
}

/** The whole index, made by a dry run over the tree the first time it is needed. */
export async function fullObjectIndex(tree: {
  srcDir: string;
  buildDir: string;
  makeArgs: string[];
  run: Runner;
}): Promise<IndexedObject[]> {
  if (!existsSync(join(tree.buildDir, INDEX))) await buildObjectIndex(tree);
  return loadObjectIndex(tree.buildDir);
}

function loadObjectIndex(buildDir: string): IndexedObject[] {
  const file = join(buildDir, INDEX);
  if (!existsSync(file)) {
    throw new KpatchError("DISTRO_INDEX", `Cannot find the object index ${file}: prepare the tree again`);
  }
  return JSON.parse(readFileSync(file, "utf8")) as IndexedObject[];
}

/** As a KbuildObject (absolute source path). */
export function kbuildObject(o: IndexedObject, srcDir: string): KbuildObject {
  return { path: o.path, source: join(srcDir, o.source), target: o.target };
}

/** Whether kbuild has compiled `obj` in this tree (its .cmd record exists). */
export function hasRecord(buildDir: string, obj: string): boolean {
  return existsSync(cmdFile(buildDir, obj));
}
