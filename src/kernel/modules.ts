/**
 * Loading and unloading modules with the system's insmod and rmmod (kmod, or busybox), and
 * what /proc/modules says is loaded. A failed insmod is explained by the last kernel log
 * lines about the module, when there are any.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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
 * insmod of exactly `bytes` (the ones kpatch read and checked), never of the user's path again:
 * they are written to a private copy in a fresh root-only directory (mkdtemp: mode 0700) that
 * nobody else can swap between the check and insmod, and removed after. Throws
 * KPATCH_INSMOD_FAILED with insmod's message and the kernel's reason; `file` names the module
 * the user gave in errors.
 */
export async function insertModule(bytes: Uint8Array, name: string, file: string): Promise<void> {
  await withPrivateCopy(bytes, name, async (copy) => {
    const r = await exec("insmod", [copy]);
    if (r.code === 0) return;
    const said = `${r.stderr}${r.stdout}`.trim().replace(/^insmod: (ERROR: )?/, "");
    const kernel = await kernelLogAbout(name);
    // EKEYREJECTED, ENOKEY: module_sig_check() refused the signature (the kernel logs no name).
    const signature = /Key was rejected by service|Required key not available/.test(said)
      ? " (the kernel enforces module signatures and does not accept this module's: unsigned, or signed with a key not in its keyring)"
      : "";
    throw new KpatchError(
      "KPATCH_INSMOD_FAILED",
      `Cannot load ${name}: insmod failed: ${said.replaceAll(copy, file) || `exit status ${r.code}`}${signature}${kernel ? `\nkernel log:\n${kernel}` : ""}`,
      { file },
    );
  });
}

/**
 * Runs `use` with the absolute path of a read-only copy of `bytes` in a new directory only its
 * owner can enter, then removes the directory (also when `use` throws).
 */
async function withPrivateCopy<T>(
  bytes: Uint8Array,
  name: string,
  use: (path: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "kpatch-load-"));
  try {
    const copy = resolve(dir, `${checkModuleName(name, "the module name")}.ko`);
    writeFileSync(copy, bytes, { mode: 0o400, flag: "wx" });
    return await use(copy);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
