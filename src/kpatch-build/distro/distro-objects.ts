/**
 * Which objects a Debian kernel's config builds, and for which target (vmlinux or a module),
 * learnt from kbuild itself without compiling: a dry run (`make -n -k vmlinux modules`) over the
 * prepared tree prints every compile command kbuild would run, with its `CC [M]` marker and
 * KBUILD_MODNAME (kbuild's own answer to which module an object links into, composite modules
 * listed from a parent directory's Makefile included: kvm-intel-y += vmx/vmx.o). The index is
 * written once per prepared tree and answers every lookup. An object keeps the name kbuild gives
 * it (arch/x86/kvm/../../../virt/kvm/kvm_main.o: the name `make` knows), its source is the
 * file's path in the tree. An object's .cmd record (how kbuild compiles it, what it depends on)
 * appears when kbuild's single-object rule first compiles it (`make fs/ext4/inode.o`);
 * kpatch-build's object compiles read that record.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join, normalize } from "node:path";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { KpatchError } from "../../util/errors.js";
import { escapeRegExp } from "../../util/escape-regexp.js";
import type { Runner } from "../../util/exec.js";
import { normalizeModuleName } from "../../util/module-name.js";
import { cmdFile, type KbuildObject, parseKbuildCmd, recordedObjectName } from "../kbuild-tree.js";

export interface IndexedObject {
  /** Relative to the build tree, as kbuild names it, e.g. "fs/ext4/inode.o". */
  path: string;
  /** Relative to the source tree, normalised, e.g. "fs/ext4/inode.c". */
  source: string;
  /** "vmlinux", a module name, or several joined by ':' (kbuild's name for an object in two). */
  target: string;
}

/** The index of a prepared tree: every object kbuild builds for the config. */
export interface ObjectIndex {
  objects: IndexedObject[];
  /**
   * What the dry run could not go through (make's "*** [target] Error" lines, -k kept going):
   * the objects below those targets may be missing from `objects`.
   */
  failed: string[];
}

const INDEX = "kpatch-objects-2.json";

/** Sources whose objects never reach a patchable text: boot and real-mode code, the vDSO. */
export const NOT_PATCHABLE = /^arch\/x86\/(boot|realmode|entry\/vdso)\//;

/** A source path kbuild wrote (absolute, or relative with ../ steps) as a path in the tree. */
function treeSource(src: string, srcDir: string): string {
  for (const dir of [srcDir, realSrcDir(srcDir)]) {
    const prefix = `${dir.replace(/\/$/, "")}/`;
    if (src.startsWith(prefix)) return normalize(src.slice(prefix.length));
  }
  return normalize(src);
}

const realDirs = new Map<string, string>();

/**
 * `srcDir` as kbuild names it with O=: its real path (the top Makefile's abs_srctree is
 * $(realpath ...)), which differs when the cache is reached through a symlink.
 */
function realSrcDir(srcDir: string): string {
  let real = realDirs.get(srcDir);
  if (real === undefined) {
    try {
      real = realpathSync(srcDir);
    } catch {
      real = srcDir;
    }
    realDirs.set(srcDir, real);
  }
  return real;
}

/** The target a compile command's flags name: -DMODULE's KBUILD_MODNAME, else vmlinux. */
function commandTarget(command: string, module: boolean): string | undefined {
  if (!module) return "vmlinux";
  const mod = /-DKBUILD_MODNAME='"([\w:-]+)"'/.exec(command)?.[1];
  return mod ? normalizeModuleName(mod) : undefined;
}

/** The object one line of a dry-run transcript compiles (one shell command per line), if any. */
export function parseDryRunLine(line: string, srcDir: string): IndexedObject | undefined {
  const m = /echo ' {2}(?:CC|AS)( \[M\])?\s+(\S+\.o)'/.exec(line);
  if (!m || !line.includes("-D__KERNEL__")) return undefined;
  const path = m[2]!;
  if (path.endsWith(".mod.o")) return undefined;
  const src = new RegExp(` -c -o ${escapeRegExp(path)} (\\S+\\.[cS])(?=\\s|;|$)`).exec(line)?.[1];
  if (!src) return undefined;
  const target = commandTarget(line, Boolean(m[1]));
  return target ? { path, source: treeSource(src, srcDir), target } : undefined;
}

/** The targets make could not go through, from its stderr ("make[3]: *** [x/Makefile:12: x/y.o] Error 1"). */
export function failedTargets(stderr: string): string[] {
  const out = new Set<string>();
  for (const m of stderr.matchAll(/\*\*\* \[(?:[^\]:]+:\d+: )?([^\]]+)\] Error/g)) out.add(m[1]!);
  return [...out].sort();
}

/** Run kbuild's dry run over `tree` and write the index; returns it. */
async function buildObjectIndex(tree: {
  srcDir: string;
  buildDir: string;
  makeArgs: string[];
  run: Runner;
}): Promise<ObjectIndex> {
  // -k: the certs/ step wants Debian's signing key, which no one has; the rest is unaffected
  // (what else fails is kept in the index: a lookup below it cannot be sure).
  const found = new Map<string, IndexedObject>();
  const errors: string[] = [];
  const r = await tree.run(
    "make",
    ["-C", tree.srcDir, `O=${tree.buildDir}`, ...tree.makeArgs, "-n", "-k", "vmlinux", "modules"],
    {
      maxBuffer: 1 << 16,
      onLine: (line, stream) => {
        if (stream === "stderr") {
          if (line.includes("*** [")) errors.push(line);
          return;
        }
        const o = parseDryRunLine(line, tree.srcDir);
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
  const index: ObjectIndex = { objects, failed: failedTargets(errors.join("\n")) };
  writeFileAtomic(join(tree.buildDir, INDEX), JSON.stringify(index));
  return index;
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
    const o = /^\.(.+\.o)\.cmd$/.test(ent.name) ? recordedObject(tree, rel) : undefined;
    if (o && !o.path.endsWith(".mod.o")) out.push(o);
  }
  return out;
}

/**
 * The object a kbuild record (.<name>.o.cmd, `file` relative to the build tree) describes, when
 * it is a kernel object, under the name the record gives it (kbuild's, ../ steps kept).
 */
function recordedObject(tree: { buildDir: string; srcDir: string }, file: string): IndexedObject | undefined {
  const text = readFileSync(join(tree.buildDir, file), "utf8");
  const path = recordedObjectName(text);
  if (!path) return undefined;
  const { command, source } = parseKbuildCmd(text, path);
  if (!command?.includes("-D__KERNEL__") || !source || !/\.[cS]$/.test(source)) return undefined;
  const target = commandTarget(command, /\s-DMODULE(\s|$)/.test(command));
  return target ? { path, source: treeSource(source, tree.srcDir), target } : undefined;
}

/** The whole index, made by a dry run over the tree the first time it is needed. */
export async function fullObjectIndex(tree: {
  srcDir: string;
  buildDir: string;
  makeArgs: string[];
  run: Runner;
}): Promise<ObjectIndex> {
  const file = join(tree.buildDir, INDEX);
  if (!existsSync(file)) return buildObjectIndex(tree);
  return JSON.parse(readFileSync(file, "utf8")) as ObjectIndex;
}

/** As a KbuildObject (absolute source path). */
export function kbuildObject(o: IndexedObject, srcDir: string): KbuildObject {
  return { path: o.path, source: join(srcDir, o.source), target: o.target };
}

/** Whether kbuild has compiled `obj` in this tree (its .cmd record exists). */
export function hasRecord(buildDir: string, obj: string): boolean {
  return existsSync(cmdFile(buildDir, obj));
}
