/**
 * Loading the installed patches at boot (what the systemd unit and the init script run), and
 * loading them all on demand. At boot, kpatch.enable=0 on the kernel command line skips
 * everything, and the crash-loop guard (crash-guard.ts) keeps a patch that was loaded by a
 * boot that never confirmed from loading again. Each patch loads on its own: one failure does
 * not keep the others from loading.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KERNEL_PATHS, type KernelPaths } from "../kernel/kernel-paths.js";
import { findPatch } from "../kernel/livepatch-sysfs.js";
import { isModuleLoaded } from "../kernel/modules.js";
import { type LoadOptions, loadPatch } from "../kernel/patch-ops.js";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
import {
  blockCrashedPatches,
  clearPending,
  currentBootId,
  markPending,
  pendingMarks,
} from "./crash-guard.js";
import { type InstalledPatch, installedPatches } from "./install.js";
import { libDir } from "./state-dir.js";

export interface LoadAllReport {
  /** Why nothing was loaded (kpatch.enable=0), if so. */
  skipped: string | undefined;
  loaded: string[];
  /** Already loaded and enabled: left alone. */
  present: string[];
  /** Kept from loading by the crash-loop guard (blockedNow: by this boot's check). */
  blocked: { name: string; reason: string }[];
  blockedNow: string[];
  failed: { name: string; code: string; message: string }[];
}

export interface LoadAllOptions extends LoadOptions {
  kernelRelease: string;
  root?: string;
  paths?: KernelPaths;
  /** Boot mode: honour kpatch.enable=0 and run the crash-loop guard. */
  boot?: boolean;
  now?: Date;
}

/** The kernel command line asks to skip boot-time patch loading (kpatch.enable=0). */
export function bootDisabled(cmdline: string): boolean {
  return /(^|\s)kpatch\.enable=(0|n|N|no|off)(\s|$)/.test(cmdline.trim());
}

export function readCmdline(paths: KernelPaths = KERNEL_PATHS): string {
  return readFileSync(join(paths.proc, "cmdline"), "utf8");
}

export async function loadInstalled(options: LoadAllOptions): Promise<LoadAllReport> {
  const root = options.root ?? libDir();
  const paths = options.paths ?? KERNEL_PATHS;
  const report: LoadAllReport = {
    skipped: undefined,
    loaded: [],
    present: [],
    blocked: [],
    blockedNow: [],
    failed: [],
  };
  // Markers of a boot that never confirmed block their patches before anything loads, also
  // on a boot with kpatch.enable=0 and for 'load --all': a crash is never forgotten.
  const bootId = currentBootId(paths.proc);
  const now = blockCrashedPatches(options.kernelRelease, bootId, options.now ?? new Date(), root);
  report.blockedNow = now.map((b) => b.name);
  if (options.boot && bootDisabled(readCmdline(paths))) {
    report.skipped = "kpatch.enable=0 is on the kernel command line";
    return report;
  }
  for (const p of installedPatches(options.kernelRelease, root)) {
    if (p.broken) {
      report.failed.push({ name: p.name, ...p.broken });
      continue;
    }
    if (p.blocked) {
      report.blocked.push({ name: p.name, reason: p.blocked.reason });
      continue;
    }
    if (findPatch(p.name, paths)?.enabled) {
      report.present.push(p.name);
      continue;
    }
    await loadOne(p, bootId, options, report, root);
  }
  return report;
}

async function loadOne(
  p: InstalledPatch,
  bootId: string,
  options: LoadAllOptions,
  report: LoadAllReport,
  root: string,
): Promise<void> {
  if (options.boot) {
    markPending(
      options.kernelRelease,
      p.name,
      { bootId, at: (options.now ?? new Date()).toISOString() },
      root,
    );
  }
  try {
    await loadPatch(p.file, options);
    report.loaded.push(p.name);
  } catch (e) {
    // A load that failed cleanly did not crash anything: no reason to block it next boot. One
    // that left the patch in the kernel (a back-out that stalled too) keeps its marker.
    const paths = options.paths ?? KERNEL_PATHS;
    const inKernel = findPatch(p.name, paths) !== undefined || isModuleLoaded(p.name, paths);
    if (options.boot && !inKernel) clearPending(options.kernelRelease, p.name, root);
    if (!(e instanceof KpatchError)) throw e;
    report.failed.push({ name: p.name, code: e.code, message: e.message });
  }
}

export interface ConfirmOptions {
  root?: string;
  paths?: KernelPaths;
}

/**
 * The system ran well with the patches this boot loaded (a clean shutdown, or a timer some
 * minutes after boot): forget this boot's pending markers. A marker of another boot stays:
 * that boot never confirmed (it crashed), and this one may not have loaded anything (it ran
 * with kpatch.enable=0), so the next boot's check still blocks that patch.
 */
export function confirmBoot(
  kernelRelease: string,
  options: ConfirmOptions = {},
): { confirmed: string[]; earlier: string[] } {
  const root = options.root ?? libDir();
  const bootId = currentBootId((options.paths ?? KERNEL_PATHS).proc);
  const marks = pendingMarks(kernelRelease, root);
  const confirmed = marks.filter((m) => m.mark.bootId === bootId).map((m) => m.name);
  for (const n of confirmed) clearPending(kernelRelease, n, root);
  return { confirmed, earlier: marks.filter((m) => m.mark.bootId !== bootId).map((m) => m.name) };
}

/** What boot-time loading needs enabled under systemd: the loader, and the confirm timer. */
const BOOT_UNITS = ["kpatch.service", "kpatch-confirm.timer"] as const;

/**
 * Enables the boot units (BOOT_UNITS) when systemd runs this system, or in the system image
 * at `systemdRoot` (systemctl --root, for packaging); returns a warning when it could not
 * (the caller prints it), or undefined. Without the confirm timer, any unclean shutdown, even
 * months after boot, would block every patch at the next boot.
 */
export async function enableBootService(options: { systemdRoot?: string } = {}): Promise<string | undefined> {
  if (options.systemdRoot === undefined && !existsSync("/run/systemd/system")) return undefined;
  const root = options.systemdRoot === undefined ? [] : [`--root=${options.systemdRoot}`];
  try {
    const r = await exec("systemctl", [...root, "enable", ...BOOT_UNITS]);
    if (r.code === 0) return undefined;
    return `could not enable ${BOOT_UNITS.join(" and ")} (systemctl: ${r.stderr.trim() || `exit ${r.code}`}); patches will not load at boot until they are enabled`;
  } catch (e) {
    return `could not run systemctl: ${(e as Error).message}`;
  }
}
