/**
 * The livepatch core's sysfs view (Documentation/ABI/testing/sysfs-kernel-livepatch):
 *   /sys/kernel/livepatch/<patch>/{enabled,transition,force,replace}
 *   /sys/kernel/livepatch/<patch>/<object>/patched          (vmlinux or a module name)
 *   /sys/kernel/livepatch/<patch>/<object>/<function,sympos>/
 * Attributes a kernel does not have (replace before 6.11, patched before 6.1) read as undefined.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KpatchError } from "../util/errors.js";
import { checkModuleName } from "../util/module-name.js";
import { KERNEL_PATHS, type KernelPaths } from "./kernel-paths.js";

export interface LoadedFunction {
  name: string;
  sympos: number;
}

export interface LoadedObject {
  /** "vmlinux" or a module name. */
  name: string;
  /** The target is loaded and its functions are redirected (undefined: the kernel does not say). */
  patched: boolean | undefined;
  functions: LoadedFunction[];
}

export interface LoadedPatch {
  name: string;
  enabled: boolean;
  transition: boolean;
  replace: boolean | undefined;
  objects: LoadedObject[];
}

/** Names of the registered patches, sorted. */
function listPatchNames(paths: KernelPaths = KERNEL_PATHS): string[] {
  if (!existsSync(paths.livepatch)) return [];
  return readdirSync(paths.livepatch, { withFileTypes: true })
    .filter((e) => e.isDirectory() || e.isSymbolicLink())
    .map((e) => e.name)
    .sort();
}

/**
 * /sys/kernel/livepatch/<name>; a patch is named after its module, so a name the kernel would
 * not give a module is refused (KPATCH_BAD_NAME) before it reaches a path: '..' is not a patch.
 */
function patchDir(name: string, paths: KernelPaths): string {
  return join(paths.livepatch, checkModuleName(name, "the patch name"));
}

export function isPatchRegistered(name: string, paths: KernelPaths = KERNEL_PATHS): boolean {
  return existsSync(patchDir(name, paths));
}

/** A patch's state, or undefined when no patch of that name is registered. */
export function findPatch(name: string, paths: KernelPaths = KERNEL_PATHS): LoadedPatch | undefined {
  const dir = patchDir(name, paths);
  if (!existsSync(dir)) return undefined;
  const objects: LoadedObject[] = [];
  for (const obj of subdirs(dir)) {
    const odir = join(dir, obj);
    const functions = subdirs(odir).map((f) => {
      const comma = f.lastIndexOf(",");
      return comma < 0
        ? { name: f, sympos: 0 }
        : { name: f.slice(0, comma), sympos: Number(f.slice(comma + 1)) || 0 };
    });
    const patched = readAttr(join(odir, "patched"));
    objects.push({ name: obj, patched: patched === undefined ? undefined : patched === "1", functions });
  }
  const replace = readAttr(join(dir, "replace"));
  return {
    name,
    enabled: readAttr(join(dir, "enabled")) === "1",
    transition: readAttr(join(dir, "transition")) === "1",
    replace: replace === undefined ? undefined : replace === "1",
    objects,
  };
}

/** Every registered patch. */
export function listPatches(paths: KernelPaths = KERNEL_PATHS): LoadedPatch[] {
  return listPatchNames(paths)
    .map((n) => findPatch(n, paths))
    .filter((p): p is LoadedPatch => p !== undefined);
}

/** The patch whose transition is in progress, if any (the kernel allows one at a time). */
export function patchInTransition(paths: KernelPaths = KERNEL_PATHS): LoadedPatch | undefined {
  return listPatches(paths).find((p) => p.transition);
}

/**
 * Enables or disables a patch. Writing while the patch is in transition reverses the
 * transition (the kernel's way to back out a stalled one).
 */
export function setPatchEnabled(name: string, enabled: boolean, paths: KernelPaths = KERNEL_PATHS): void {
  const file = join(patchDir(name, paths), "enabled");
  try {
    writeFileSync(file, enabled ? "1" : "0");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new KpatchError(
      "KPATCH_SYSFS_WRITE",
      `Cannot ${enabled ? "enable" : "disable"} ${name}: writing ${file} failed: ${err.code ?? err.message}`,
      { file },
      { cause: e },
    );
  }
}

function readAttr(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() || (e.isSymbolicLink() && statSync(join(dir, e.name)).isDirectory()))
    .map((e) => e.name)
    .sort();
}
