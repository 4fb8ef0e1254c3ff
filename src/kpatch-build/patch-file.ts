/**
 * Source patches: which files they touch, applying them to a tree (all or nothing), and
 * reverting them. A patch that does not apply leaves the tree as it was.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { KpatchError } from "../util/errors.js";
import { exec, tailLines } from "../util/exec.js";

export interface SourcePatch {
  path: string;
  /** Files the patch touches, relative to the tree's top (after -p1). */
  files: string[];
}

/** Files a unified diff touches (from its +++/--- lines), relative to the tree top. */
export function touchedFiles(text: string): string[] {
  const files = new Set<string>();
  const strip = (p: string) =>
    p
      .split("\t")[0]!
      .trim()
      .replace(/^[ab]\//, "");
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith("+++ ")) continue;
    const plus = strip(line.slice(4));
    const minus = lines[i - 1]?.startsWith("--- ") ? strip(lines[i - 1]!.slice(4)) : plus;
    files.add(plus === "/dev/null" ? minus : plus);
  }
  return [...files].sort();
}

export function readPatch(path: string): SourcePatch {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new KpatchError("PATCH_NOT_FOUND", `Cannot read the patch: ${(e as Error).message}`, {
      file: path,
    });
  }
  const files = touchedFiles(text);
  if (files.length === 0)
    throw new KpatchError("PATCH_EMPTY", "Cannot use the patch: it touches no file", { file: path });
  return { path, files };
}

async function runPatch(tree: string, patch: SourcePatch, extra: string[]) {
  return exec("patch", ["-p1", "--batch", "--forward", "--silent", "-d", tree, "-i", patch.path, ...extra]);
}

/** The modification times of files, to put back after a revert (kbuild compares mtimes). */
export function snapshotMtimes(tree: string, files: readonly string[]): Map<string, Date | undefined> {
  const m = new Map<string, Date | undefined>();
  for (const f of files) {
    const p = join(tree, f);
    m.set(f, existsSync(p) ? statSync(p).mtime : undefined);
  }
  return m;
}

/**
 * Apply patches in order. Each is tried with --dry-run first; if one does not apply, the ones
 * before it are reverted and PATCH_FAILED says which patch and what patch(1) said.
 */
export async function applyPatches(tree: string, patches: readonly SourcePatch[]): Promise<void> {
  const applied: SourcePatch[] = [];
  for (const p of patches) {
    const dry = await runPatch(tree, p, ["--dry-run"]);
    if (dry.code !== 0) {
      await revertPatches(tree, applied);
      throw new KpatchError(
        "PATCH_FAILED",
        `Cannot apply the patch to ${tree}:\n${tailLines(`${dry.stdout}${dry.stderr}`, 20)}`,
        { file: p.path },
      );
    }
    const r = await runPatch(tree, p, []);
    if (r.code !== 0) {
      applied.push(p); // a partial apply: reverting it is the best we can do
      await revertPatches(tree, applied);
      throw new KpatchError(
        "PATCH_FAILED",
        `Cannot apply the patch:\n${tailLines(r.stdout + r.stderr, 20)}`,
        {
          file: p.path,
        },
      );
    }
    applied.push(p);
  }
}

/**
 * Revert applied patches, last first. Throws PATCH_REVERT_FAILED naming the patch. With
 * `onlyApplied` (recovering after a run that died), a patch that is not applied is skipped.
 */
export async function revertPatches(
  tree: string,
  patches: readonly SourcePatch[],
  options: { onlyApplied?: boolean } = {},
): Promise<void> {
  for (const p of [...patches].reverse()) {
    if (options.onlyApplied) {
      const dry = await exec("patch", [
        "-p1",
        "-R",
        "--batch",
        "--silent",
        "--dry-run",
        "-d",
        tree,
        "-i",
        p.path,
      ]);
      if (dry.code !== 0) continue;
    }
    const r = await exec("patch", ["-p1", "-R", "--batch", "--silent", "-d", tree, "-i", p.path]);
    if (r.code !== 0) {
      throw new KpatchError(
        "PATCH_REVERT_FAILED",
        `Cannot revert the patch from ${tree}; the tree needs manual repair:\n${tailLines(r.stdout + r.stderr, 20)}`,
        { file: p.path },
      );
    }
  }
}
