/**
 * Installed patches: modules kept under /var/lib/kpatch/<kernel release>/ to be loaded at
 * every boot of that kernel. Installing checks the module the way loading does (a livepatch
 * module, built for that kernel) so a bad module is refused now, not at the next boot.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { moduleNameOf, readModuleFile } from "../kernel/modinfo.js";
import { checkPatchModule } from "../kernel/patch-ops.js";
import { KpatchError } from "../util/errors.js";
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
}

export interface InstallOptions {
  kernelRelease: string;
  root?: string;
}

/** Kernel releases with an install directory, sorted. */
export function installedKernels(root = libDir()): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort();
}

/** The patches installed for one kernel release, sorted by file name. */
export function installedPatches(kernelRelease: string, root = libDir()): InstalledPatch[] {
  const dir = kernelDir(kernelRelease, root);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".ko") && !f.startsWith(".") && statSync(join(dir, f)).isFile())
    .sort()
    .map((f) => {
      const file = join(dir, f);
      const name = installedName(file);
      return { kernel: kernelRelease, name, file, blocked: readBlocked(kernelRelease, name, root) };
    });
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

export function installPatch(file: string, options: InstallOptions): InstalledPatch {
  const root = options.root ?? libDir();
  const { info } = readModuleFile(file);
  checkPatchModule(info, options.kernelRelease);
  const dir = kernelDir(options.kernelRelease, root);
  const dest = join(dir, basename(file).endsWith(".ko") ? basename(file) : `${basename(file)}.ko`);
  writeFileDurably(dest, readFileSync(file));
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
  clearGuard(options.kernelRelease, found.name, root);
  return found;
}

function installedName(file: string): string {
  try {
    return readModuleFile(file).info.name;
  } catch {
    return moduleNameOf(file);
  }
}
