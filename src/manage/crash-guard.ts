/**
 * The crash-loop guard. Before a patch is loaded at boot, a "pending" marker naming the boot
 * (the kernel's boot_id) is written durably; a clean shutdown, or `kpatch boot --confirm` once
 * the system has run well for a while, removes the markers. A marker still there at the next
 * boot means the boot that loaded the patch ended without either: it crashed (or lost power).
 * That patch is then blocked: not loaded at boot until the administrator runs
 * `kpatch unblock`. So a patch that crashes the kernel costs one crash, not a crash loop.
 *
 *   /var/lib/kpatch/<kver>/.boot/<patch>.pending   {"bootId": ..., "at": ISO time}
 *   /var/lib/kpatch/<kver>/.boot/<patch>.blocked   {"bootId": ..., "at": ..., "since": ..., "reason": ...}
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkModuleName, isModuleName } from "../util/module-name.js";
import { bootDir, libDir, removeFileDurably, writeFileDurably } from "./state-dir.js";

export interface PendingMark {
  /** The boot that loaded the patch. */
  bootId: string;
  /** When it was loaded (ISO 8601). */
  at: string;
}

export interface BlockedPatch extends PendingMark {
  /** When the guard blocked it (the next boot). */
  since: string;
  reason: string;
}

export { currentBootId } from "../util/boot-id.js";

type MarkKind = "pending" | "blocked";

/** <kver>/.boot/<patch>.<kind>; the patch name is checked first (KPATCH_BAD_NAME). */
function markerFile(kernelRelease: string, name: string, kind: MarkKind, root: string): string {
  return join(bootDir(kernelRelease, root), `${checkModuleName(name, "the patch name")}.${kind}`);
}

export function markPending(kernelRelease: string, name: string, mark: PendingMark, root = libDir()): void {
  writeFileDurably(markerFile(kernelRelease, name, "pending", root), `${JSON.stringify(mark)}\n`);
}

export function clearPending(kernelRelease: string, name: string, root = libDir()): void {
  removeFileDurably(markerFile(kernelRelease, name, "pending", root));
}

export function pendingMarks(kernelRelease: string, root = libDir()): { name: string; mark: PendingMark }[] {
  return readMarks<PendingMark>(kernelRelease, "pending", root);
}

export function readBlocked(kernelRelease: string, name: string, root = libDir()): BlockedPatch | undefined {
  const file = markerFile(kernelRelease, name, "blocked", root);
  return existsSync(file) ? readMark<BlockedPatch>(file) : undefined;
}

export function block(kernelRelease: string, name: string, blocked: BlockedPatch, root = libDir()): void {
  writeFileDurably(markerFile(kernelRelease, name, "blocked", root), `${JSON.stringify(blocked)}\n`);
}

/** Lets a blocked patch load at boot again; false when it was not blocked. */
export function unblock(kernelRelease: string, name: string, root = libDir()): boolean {
  const file = markerFile(kernelRelease, name, "blocked", root);
  if (!existsSync(file)) return false;
  removeFileDurably(file);
  return true;
}

/** Forgets everything the guard knows about a patch (uninstall). */
export function clearGuard(kernelRelease: string, name: string, root = libDir()): void {
  clearPending(kernelRelease, name, root);
  unblock(kernelRelease, name, root);
}

/**
 * The boot-time check: every pending marker of another boot becomes a block (that boot never
 * confirmed). Returns the patches blocked now.
 */
export function blockCrashedPatches(
  kernelRelease: string,
  bootId: string,
  now: Date,
  root = libDir(),
): { name: string; mark: BlockedPatch }[] {
  const out: { name: string; mark: BlockedPatch }[] = [];
  for (const { name, mark } of pendingMarks(kernelRelease, root)) {
    if (mark.bootId === bootId) continue;
    const blocked: BlockedPatch = {
      ...mark,
      since: now.toISOString(),
      reason: `the boot that loaded it (${mark.at}, boot id ${mark.bootId}) ended without a clean shutdown or 'kpatch boot --confirm': it may have crashed the kernel`,
    };
    block(kernelRelease, name, blocked, root);
    clearPending(kernelRelease, name, root);
    out.push({ name, mark: blocked });
  }
  return out;
}

/** The markers of one kind; a file whose name is no patch name is not ours and is left alone. */
function readMarks<T>(kernelRelease: string, kind: MarkKind, root: string): { name: string; mark: T }[] {
  const dir = bootDir(kernelRelease, root);
  if (!existsSync(dir)) return [];
  const out: { name: string; mark: T }[] = [];
  for (const f of readdirSync(dir).sort()) {
    const name = f.slice(0, -kind.length - 1);
    if (f !== `${name}.${kind}` || !isModuleName(name)) continue;
    out.push({ name, mark: readMark<T>(join(dir, f)) });
  }
  return out;
}

/** A marker's contents; one that cannot be read still counts (the guard errs on the safe side). */
function readMark<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch {
    return { bootId: "unknown", at: "unknown", since: "unknown", reason: `unreadable marker ${file}` } as T;
  }
}
