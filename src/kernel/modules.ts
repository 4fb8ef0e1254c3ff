/**
 * Loading and unloading modules with the system's insmod and rmmod (kmod, or busybox), and
 * what /proc/modules says is loaded. A failed insmod is explained by the last kernel log
 * lines about the module, when there are any.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
import { checkModuleName } from "../util/module-name.js";
import { KERNEL_PATHS, type KernelPaths } from "./kernel-paths.js";

export interface LoadedModule {
  name: string;
  size: number;
  refcount: number;
  /** Modules that use this one. */
  usedBy: string[];
  /** Live, Loading or Unloading. */
  state: string;
  /** The module's taint letters, e.g. "K" (a live patch), "O" (out of tree), "E" (unsigned). */
  taints: string;
}

/** TAINT_LIVEPATCH: the kernel marks every module that registers a live patch with K. */
export function isLivepatchModule(m: LoadedModule): boolean {
  return m.taints.includes("K");
}

/** /proc/modules, newest module first (the kernel lists them that way). */
export function loadedModules(paths: KernelPaths = KERNEL_PATHS): LoadedModule[] {
  let text: string;
  try {
    text = readFileSync(join(paths.proc, "modules"), "utf8");
  } catch {
    return [];
  }
  const out: LoadedModule[] = [];
  for (const line of text.split("\n")) {
    const [name, size, refcount, usedBy, state] = line.trim().split(/\s+/);
    if (!name || size === undefined) continue;
    const taints = /\(([A-Z]+)\)\s*$/.exec(line)?.[1] ?? "";
    out.push({
      name,
      size: Number(size),
      refcount: Number(refcount) || 0,
      usedBy: usedBy && usedBy !== "-" ? usedBy.split(",").filter(Boolean) : [],
      state: state ?? "Live",
      taints,
    });
  }
  return out;
}

export function isModuleLoaded(name: string, paths: KernelPaths = KERNEL_PATHS): boolean {
  return findLoadedModule(name, paths) !== undefined;
}

export function findLoadedModule(name: string, paths: KernelPaths = KERNEL_PATHS): LoadedModule | undefined {
  return loadedModules(paths).find((m) => m.name === name);
}

/**
 * insmod PATH; throws KPATCH_INSMOD_FAILED with insmod's message and the kernel's reason.
 * The path is made absolute, so a file named like an option (-f.ko) is never read as one.
 */
export async function insertModule(path: string, name: string): Promise<void> {
  const r = await exec("insmod", [resolve(path)]);
  if (r.code === 0) return;
  const said = `${r.stderr}${r.stdout}`.trim().replace(/^insmod: (ERROR: )?/, "");
  const kernel = await kernelLogAbout(name);
  // EKEYREJECTED, ENOKEY: module_sig_check() refused the signature (the kernel logs no name).
  const signature = /Key was rejected by service|Required key not available/.test(said)
    ? " (the kernel enforces module signatures and does not accept this module's: unsigned, or signed with a key not in its keyring)"
    : "";
  throw new KpatchError(
    "KPATCH_INSMOD_FAILED",
    `Cannot load ${name}: insmod failed: ${said || `exit status ${r.code}`}${signature}${kernel ? `\nkernel log:\n${kernel}` : ""}`,
    { file: path },
  );
}

/** rmmod NAME; throws KPATCH_RMMOD_FAILED with rmmod's message. */
export async function removeModule(name: string): Promise<void> {
  const r = await exec("rmmod", [checkModuleName(name, "the module name")]);
  if (r.code === 0) return;
  const said = `${r.stderr}${r.stdout}`.trim().replace(/^rmmod: (ERROR: )?/, "");
  throw new KpatchError(
    "KPATCH_RMMOD_FAILED",
    `Cannot unload ${name}: rmmod failed: ${said || `exit status ${r.code}`}`,
  );
}

/** The last kernel log lines about the module or the livepatch core (why it refused), indented. */
async function kernelLogAbout(name: string): Promise<string> {
  try {
    const r = await exec("dmesg", []);
    if (r.code !== 0) return "";
    const dashed = name.replace(/_/g, "-");
    return r.stdout
      .split("\n")
      .filter((l) => l.includes(name) || l.includes(dashed) || l.includes("livepatch:"))
      .slice(-5)
      .map((l) => `  ${l.trim()}`)
      .join("\n");
  } catch {
    return "";
  }
}
