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
import { loadPatch, type PatchOpOptions } from "../kernel/patch-ops.js";
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

export interface LoadAllOptions extends PatchOpOptions {
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
  if (options.boot && bootDisabled(readCmdline(paths))) {
    report.skipped = "kpatch.enable=0 is on the kernel command line";
    return report;
  }
  const bootId = currentBootId(paths.proc);
  if (options.boot) {
    const now = blockCrashedPatches(options.kernelRelease, bootId, options.now ?? new Date(), root);
    report.blockedNow = now.map((b) => b.name);
  }
  for (const p of installedPatches(options.kernelRelease, root)) {
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
    // A load that failed cleanly did not crash anything: no reason to block it next boot.
    if (options.boot) clearPending(options.kernelRelease, p.name, root);
    if (!(e instanceof KpatchError)) throw e;
    report.failed.push({ name: p.name, code: e.code, message: e.message });
  }
}

/**
 * The system ran well with the patches this boot loaded (a clean shutdown, or a timer some
 * minutes after boot): forget the pending markers. Returns the patches confirmed.
 */
export function confirmBoot(kernelRelease: string, root = libDir()): string[] {
  const names = pendingMarks(kernelRelease, root).map((m) => m.name);
  for (const n of names) clearPending(kernelRelease, n, root);
  return names;
}

/**
 * Enables the systemd unit when systemd runs this system; returns a warning when it could not
 * (the caller prints it), or undefined.
 */
export async function enableBootService(): Promise<string | undefined> {
  if (!existsSync("/run/systemd/system")) return undefined;
  try {
    const r = await exec("systemctl", ["enable", "kpatch.service"]);
    if (r.code === 0) return undefined;
    return `could not enable kpatch.service (systemctl: ${r.stderr.trim() || `exit ${r.code}`}); patches will not load at boot until it is enabled`;
  } catch (e) {
    return `could not run systemctl: ${(e as Error).message}`;
  }
}
