/**
 * Installed patches: modules kept under /var/lib/kpatch/<kernel release>/ to be loaded at
 * every boot of that kernel. Installing checks the module the way loading does (a livepatch
 * module, built for that kernel) so a bad module is refused now, not at the next boot.
 */
import { lstatSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { badKernelReleaseReason } from "../kernel/kernel-paths.js";
import { readModuleFile } from "../kernel/modinfo.js";
import { checkPatchModule } from "../kernel/patch-ops.js";
import { syncDir, tempPathFor } from "../util/atomic-write.js";
import { isKpatchError, KpatchError } from "../util/errors.js";
import { isModuleName, moduleNameOf } from "../util/module-name.js";
import { type BlockedPatch, clearGuard, readBlocked } from "./crash-guard.js";
import { kernelDir, libDir, removeFileDurably, writeFileDurably } from "./state-dir.js";

export interface InstalledPatch {
  /** The kernel release it is installed for. */
  kernel: string;
  /** The patch (module) name. */
  name: string;
  file: string;
  /** Set when the crash-loop guard keeps it from loading at boot. */
  blocked: BlockedPatch | undefined;
  /**
   * Why the file cannot be loaded (a dangling link, unreadable, not a module): listed and
   * reported at boot, where the other patches still load.
   */
  broken?: { code: string; message: string };
}

export interface InstallOptions {
  kernelRelease: string;
  root?: string;
}

/**
 * Natural order of file names: digit runs compare as numbers, so fix-v9 comes before fix-v10
 * (a later atomic-replace patch loads last and stays), the rest by code unit.
 */
export function naturalCompare(a: string, b: string): number {
  const split = (s: string) => s.match(/\d+|\D+/g) ?? [];
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (p === q) continue;
    if (/^\d/.test(p) && /^\d/.test(q)) {
      const [m, n] = [p.replace(/^0+/, ""), q.replace(/^0+/, "")];
      if (m.length !== n.length) return m.length - n.length;
      if (m !== n) return m < n ? -1 : 1;
      return p.length - q.length; // 007 after 7
    }
    return p < q ? -1 : 1;
  }
  return x.length - y.length;
}

/** An entry of the state directory that is not a kernel release's directory: skipped, and why. */
export interface OddEntry {
  path: string;
  why: string;
}

/** Kernel releases with an install directory, sorted (odd entries left out: see oddEntries). */
export function installedKernels(root = libDir()): string[] {
  return readStateDir(root).releases;
}

/** Entries of the state directory that name no kernel release: reported, never read as one. */
export function oddEntries(root = libDir()): OddEntry[] {
  return readStateDir(root).odd;
}

function readStateDir(root: string): { releases: string[]; odd: OddEntry[] } {
  const releases: string[] = [];
  const odd: OddEntry[] = [];
  for (const e of listDir(root)) {
    if (e.name.startsWith(".")) continue;
    const why = e.isDirectory() ? badKernelReleaseReason(e.name) : "not a directory";
    if (why) odd.push({ path: join(root, e.name), why });
    else releases.push(e.name);
  }
  return { releases: releases.sort(naturalCompare), odd };
}

/**
 * The patches installed for one kernel release, in natural file-name order (the order they
 * load at boot). A file that cannot be used is listed with `broken`; one that vanished while
 * we looked is left out.
 */
export function installedPatches(kernelRelease: string, root = libDir()): InstalledPatch[] {
  const dir = kernelDir(kernelRelease, root);
  return listDir(dir)
    .map((e) => e.name)
    .filter((f) => f.endsWith(".ko") && !f.startsWith("."))
    .sort(naturalCompare)
    .flatMap((f) => installedEntry(kernelRelease, join(dir, f), root) ?? []);
}

function installedEntry(kernel: string, file: string, root: string): InstalledPatch | undefined {
  try {
    const name = readModuleFile(file).info.name;
    return { kernel, name, file, blocked: readBlocked(kernel, name, root) };
  } catch (e) {
    if (!isKpatchError(e)) throw e;
    if (!exists(file)) return undefined; // removed since readdir
    const name = moduleNameOf(file);
    const blocked = isModuleName(name) ? readBlocked(kernel, name, root) : undefined;
    return { kernel, name, file, blocked, broken: { code: e.code, message: e.message } };
  }
}

/** Every installed patch, for every kernel release. */
export function allInstalledPatches(root = libDir()): InstalledPatch[] {
  return installedKernels(root).flatMap((k) => installedPatches(k, root));
}

/** The installed patch of that name (or file name) for a kernel, if any. */
export function findInstalled(
  nameOrFile: string,
  kernelRelease: string,
  root = libDir(),
): InstalledPatch | undefined {
  const name = moduleNameOf(nameOrFile);
  return installedPatches(kernelRelease, root).find((p) => p.name === name || moduleNameOf(p.file) === name);
}

/**
 * Installs a patch module for a kernel release. The bytes checked are the bytes installed
 * (read once); they are written beside the target, read back and compared, and only then
 * renamed into place; an older file of the same patch is removed after that. A failure at any
 * step leaves the previous installation as it was.
 */
export function installPatch(file: string, options: InstallOptions): InstalledPatch {
  const root = options.root ?? libDir();
  const { info, bytes } = readModuleFile(file);
  checkPatchModule(info, options.kernelRelease);
  const dir = kernelDir(options.kernelRelease, root);
  const dest = join(dir, installedFileName(file, info.name));
  const staged = tempPathFor(dest);
  try {
    writeFileDurably(staged, bytes);
    const back = readFileSync(staged);
    if (!back.equals(bytes)) {
      throw new KpatchError(
        "KPATCH_STATE_IO",
        `Cannot install ${file}: the copy in ${dir} reads back different (${back.length} of ${bytes.length} bytes); nothing was changed`,
        { file: dest },
      );
    }
    renameSync(staged, dest);
  } catch (e) {
    rmSync(staged, { force: true });
    throw e;
  }
  syncDir(dir);
  // A module of the same name under another file name is the older version of this patch.
  for (const old of installedPatches(options.kernelRelease, root)) {
    if (old.name === info.name && old.file !== dest) removeFileDurably(old.file);
  }
  return {
    kernel: options.kernelRelease,
    name: info.name,
    file: dest,
    blocked: readBlocked(options.kernelRelease, info.name, root),
  };
}

/** The file's own name when it names a module (kpatch keeps it too), else <module name>.ko. */
function installedFileName(file: string, name: string): string {
  const base = basename(file);
  return isModuleName(moduleNameOf(base)) && base.endsWith(".ko") ? base : `${name}.ko`;
}

/** Removes an installed patch (and its crash-guard state); returns what was removed. */
export function uninstallPatch(nameOrFile: string, options: InstallOptions): InstalledPatch {
  const root = options.root ?? libDir();
  const found = findInstalled(nameOrFile, options.kernelRelease, root);
  if (!found) {
    throw new KpatchError(
      "KPATCH_NOT_INSTALLED",
      `Cannot uninstall ${nameOrFile}: it is not installed for kernel ${options.kernelRelease} (see 'kpatch list')`,
    );
  }
  removeFileDurably(found.file);
  if (isModuleName(found.name)) clearGuard(options.kernelRelease, found.name, root);
  return found;
}

function listDir(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new KpatchError("KPATCH_STATE_IO", `Cannot list ${dir}: ${(e as Error).message}`, { file: dir });
  }
}

/** There, even as a dangling symbolic link. */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
