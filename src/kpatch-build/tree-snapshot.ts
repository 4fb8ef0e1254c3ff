/**
 * The files a run is about to patch, saved whole (content, mode, times; or that they did not
 * exist), so the tree can be put back exactly without asking patch(1) to reverse anything.
 * Saving also covers what GNU patch may leave next to a file: its backup (.orig), reject file
 * (.rej) and the temporary files it writes before renaming (name.oXXXXXX, name.rXXXXXX, left by
 * a patch killed mid-write). Restoring is idempotent and ends with a verification.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { KpatchError } from "../util/errors.js";
import { escapeRegExp } from "../util/escape-regexp.js";

export type SavedFile =
  | { path: string; kind: "absent" }
  | { path: string; kind: "symlink"; target: string }
  | {
      path: string;
      kind: "file";
      mode: number;
      atimeNs: string;
      mtimeNs: string;
      sha256: string;
      data: string;
    };

export interface TreeSnapshot {
  files: SavedFile[];
  /** Directories that did not exist (patch creates them for new files), deepest first. */
  newDirs: string[];
  /** Leftover-looking names (patch temporaries) that existed already and must stay. */
  keep: string[];
  /**
   * What the run left in each saved path after its last patch (stateOf), recorded after every
   * patch it applied: a later run restores a path only from this state or finds it as saved.
   */
  left?: Record<string, string>;
}

/** What patch(1) may leave beside `name` besides the file itself. */
const BESIDE = [".orig", ".rej", "~"];
const patchTemp = (name: string) => new RegExp(`^${escapeRegExp(name)}\\.[or]\\w{6,7}$`);

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function lstatMaybe(p: string) {
  try {
    return lstatSync(p, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR")
      return undefined;
    throw e;
  }
}

function saveFile(tree: string, path: string): SavedFile {
  const full = join(tree, path);
  const st = lstatMaybe(full);
  if (!st) return { path, kind: "absent" };
  if (st.isSymbolicLink()) return { path, kind: "symlink", target: readlinkSync(full) };
  if (!st.isFile()) {
    throw new KpatchError("PATCH_UNSAFE_PATH", `Cannot patch ${path}: it is not a regular file`, {
      file: full,
    });
  }
  const data = readFileSync(full);
  return {
    path,
    kind: "file",
    mode: Number(st.mode & 0o7777n),
    atimeNs: st.atimeNs.toString(),
    mtimeNs: st.mtimeNs.toString(),
    sha256: sha256(data),
    data: data.toString("base64"),
  };
}

function dirEntries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Save `files` (relative to `tree`) and what patch may create beside them. */
export function snapshotFiles(tree: string, files: readonly string[]): TreeSnapshot {
  const paths = new Set<string>();
  const newDirs = new Set<string>();
  const keep: string[] = [];
  for (const f of files) {
    for (const suffix of ["", ...BESIDE]) paths.add(f + suffix);
    for (let d = dirname(f); d !== "." && !lstatMaybe(join(tree, d)); d = dirname(d)) newDirs.add(d);
    const re = patchTemp(basename(f));
    for (const e of dirEntries(join(tree, dirname(f)))) if (re.test(e)) keep.push(join(dirname(f), e));
  }
  return {
    files: [...paths].sort().map((p) => saveFile(tree, p)),
    newDirs: [...newDirs].sort((a, b) => b.length - a.length),
    keep,
  };
}

const toSeconds = (ns: string) => Number(BigInt(ns) / 1000n) / 1e6;
/** utimes() takes seconds as a double: the times come back within a microsecond. */
const TIME_SLACK_NS = 2000n;

function matches(tree: string, s: SavedFile): boolean {
  const full = join(tree, s.path);
  const st = lstatMaybe(full);
  if (s.kind === "absent") return !st;
  if (s.kind === "symlink") return !!st?.isSymbolicLink() && readlinkSync(full) === s.target;
  if (!st?.isFile() || Number(st.mode & 0o7777n) !== s.mode) return false;
  const dt = st.mtimeNs - BigInt(s.mtimeNs);
  if (dt > TIME_SLACK_NS || dt < -TIME_SLACK_NS) return false;
  return sha256(readFileSync(full)) === s.sha256;
}

function put(tree: string, s: SavedFile): void {
  const full = join(tree, s.path);
  const st = lstatMaybe(full);
  // patch(1) never puts a directory where a file was: one there now is someone else's.
  if (st?.isDirectory()) throw new Error("a directory is there now");
  if (st && (s.kind !== "file" || !st.isFile())) rmSync(full, { force: true });
  if (s.kind === "absent") return;
  if (s.kind === "symlink") {
    symlinkSync(s.target, full);
    return;
  }
  writeFileSync(full, Buffer.from(s.data, "base64"));
  chmodSync(full, s.mode);
  utimesSync(full, toSeconds(s.atimeNs), toSeconds(s.mtimeNs));
}

/** A path's state in a word: "absent", "link:<target>", "file:<sha256>" (or "other"). */
function stateOf(tree: string, path: string): string {
  const full = join(tree, path);
  const st = lstatMaybe(full);
  if (!st) return "absent";
  if (st.isSymbolicLink()) return `link:${readlinkSync(full)}`;
  return st.isFile() ? `file:${sha256(readFileSync(full))}` : "other";
}

function savedState(s: SavedFile): string {
  if (s.kind === "absent") return "absent";
  return s.kind === "symlink" ? `link:${s.target}` : `file:${s.sha256}`;
}

/** The snapshot with what the run leaves in each saved path now (after a patch it applied). */
export function withLeftState(tree: string, snap: TreeSnapshot): TreeSnapshot {
  return { ...snap, left: Object.fromEntries(snap.files.map((s) => [s.path, stateOf(tree, s.path)])) };
}

/**
 * The saved paths that hold neither what was saved nor what the run recorded leaving there:
 * changed by someone else since (or by a patch the run died applying). Restoring them would
 * lose that change.
 */
export function changedSinceLeft(tree: string, snap: TreeSnapshot): string[] {
  return snap.files
    .filter((s) => {
      const now = stateOf(tree, s.path);
      return now !== savedState(s) && now !== snap.left?.[s.path];
    })
    .map((s) => s.path);
}

/** Writes each saved file's original beside it as <path>.kpatch-ts-orig; their paths. */
export function keepOriginals(tree: string, snap: TreeSnapshot, paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of snap.files) {
    if (s.kind !== "file" || !paths.includes(s.path)) continue;
    const kept = `${s.path}.kpatch-ts-orig`;
    writeFileSync(join(tree, kept), Buffer.from(s.data, "base64"), { mode: s.mode });
    out.push(kept);
  }
  return out;
}

/**
 * Put the saved files back (those already as saved are not touched), remove patch's leftovers
 * and the directories it created, then verify. TREE_RESTORE_FAILED names what is still wrong.
 */
export function restoreSnapshot(tree: string, snap: TreeSnapshot): void {
  const wrong: string[] = [];
  for (const s of snap.files) {
    try {
      if (!matches(tree, s)) put(tree, s);
    } catch (e) {
      wrong.push(`${s.path}: ${(e as Error).message}`);
    }
  }
  const keep = new Set(snap.keep);
  for (const s of snap.files) {
    const re = patchTemp(basename(s.path));
    for (const e of dirEntries(join(tree, dirname(s.path)))) {
      const rel = join(dirname(s.path), e);
      if (re.test(e) && !keep.has(rel)) rmSync(join(tree, rel), { force: true });
    }
  }
  for (const d of snap.newDirs) {
    try {
      rmdirSync(join(tree, d));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") wrong.push(`${d}/: ${code === "ENOTEMPTY" ? "holds files not ours" : code}`);
    }
  }
  for (const s of snap.files)
    if (!wrong.some((w) => w.startsWith(`${s.path}:`)) && !matches(tree, s))
      wrong.push(`${s.path}: differs after the restore`);
  if (wrong.length) {
    throw new KpatchError(
      "TREE_RESTORE_FAILED",
      `Cannot restore ${tree}; these files need repair by hand:\n${wrong.map((w) => `  ${w}`).join("\n")}`,
      { file: tree },
    );
  }
}
