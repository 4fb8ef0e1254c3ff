/**
 * Source patches: which files they touch, and applying them to a tree with GNU patch. Applying
 * is all or nothing only together with the tree lock's saved files (tree-lock.ts): nothing here
 * ever runs `patch -R`, which applies a patch forward when it finds it not applied.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, normalize } from "node:path";
import { KpatchError } from "../util/errors.js";
import { exec, tailLines } from "../util/exec.js";
import { throwIfAborted, throwIfChildStopped } from "./interrupt.js";

export interface SourcePatch {
  path: string;
  /** Files the patch touches, relative to the tree's top (after -p1), sorted. */
  files: string[];
}

/** A hunk GNU patch placed away from its line (offset) or with context lines ignored (fuzz). */
export interface InexactHunk {
  patch: string;
  file: string;
  hunk: number;
  line: number;
  offset: number;
  fuzz: number;
}

/** C-quoted names, as git writes a name with spaces or special characters: "a/x\tb". */
function unquote(s: string): string {
  if (!s.startsWith('"')) return s;
  const body = s.slice(1, s.lastIndexOf('"'));
  const esc: Record<string, string> = { n: "\n", t: "\t", '"': '"', "\\": "\\", a: "\x07", b: "\b" };
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== "\\") {
      bytes.push(...Buffer.from(c, "utf8"));
      continue;
    }
    const oct = /^[0-7]{3}/.exec(body.slice(i + 1));
    if (oct) {
      bytes.push(Number.parseInt(oct[0], 8));
      i += 3;
    } else {
      bytes.push(...Buffer.from(esc[body[i + 1]!] ?? body[i + 1]!, "utf8"));
      i++;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The name in a ---/+++ header: up to a tab (a timestamp follows), unquoted. */
function headerName(rest: string): string {
  const name = rest.startsWith('"') ? rest.slice(0, rest.lastIndexOf('"') + 1) : rest.split("\t")[0]!;
  return unquote(name.trimEnd());
}

/** A name relative to the tree top; refused if it leaves the tree (absolute, or through ".."). */
function insideTree(rel: string, name: string, patchPath: string): string {
  const n = normalize(rel);
  if (!rel || isAbsolute(n) || n === "." || n.split("/").includes("..")) {
    throw new KpatchError(
      "PATCH_UNSAFE_PATH",
      `Cannot use the patch: it names '${name}', which is not a file inside the tree`,
      { file: patchPath },
    );
  }
  return n;
}

/** What `patch -p1` makes of a name: the first component stripped. */
function stripOne(name: string, patchPath: string): string {
  const slash = name.indexOf("/");
  return insideTree(slash < 0 ? "" : name.slice(slash + 1).replace(/^\/+/, ""), name, patchPath);
}

/** `diff --git a/X b/Y`: both names (X and Y are the same but for renames and copies). */
function gitNames(rest: string): string[] {
  const quoted = rest.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  if (rest.includes('"') && quoted.length === 2) return quoted.map(unquote);
  // Unquoted names may hold spaces: split where both halves name the same file.
  for (let i = rest.indexOf(" "); i > 0; i = rest.indexOf(" ", i + 1)) {
    const a = rest.slice(0, i);
    const b = rest.slice(i + 1);
    if (a.slice(a.indexOf("/")) === b.slice(b.indexOf("/"))) return [a, b];
  }
  return [];
}

/**
 * The index of a hunk's last line, the hunk's header at `header`: its lines are consumed by the
 * header's counts (`old` lines before, `added` after), so content that looks like a header is not
 * read as one.
 */
function skipHunk(
  lines: readonly string[],
  hunk: { header: number; old: number; added: number; patchPath: string },
): number {
  let { header: i, old, added } = hunk;
  while ((old > 0 || added > 0) && i + 1 < lines.length) {
    const l = lines[++i]!;
    if (l.startsWith("\\")) continue; // "\ No newline at end of file"
    if (l.startsWith("-")) old--;
    else if (l.startsWith("+")) added--;
    else if (l.startsWith(" ") || l === "") {
      old--;
      added--;
    } else {
      throw new KpatchError("PATCH_CORRUPT", `Cannot read the patch: line ${i + 1} is inside a hunk`, {
        file: hunk.patchPath,
      });
    }
  }
  // GNU patch reads "\ No newline" after the last line too.
  if (lines[i + 1]?.startsWith("\\")) i++;
  return i;
}

/**
 * Files a unified diff touches, relative to the tree top (-p1): the ---/+++ headers, and git's
 * extended headers (renames, copies, mode changes). Hunks are consumed by their line counts, so
 * a removed line that reads "-- x" or an added one that reads "++ x" is content, not a header.
 */
export function touchedFiles(text: string, patchPath = "patch"): string[] {
  const files = new Set<string>();
  const add = (name: string) => {
    if (name !== "/dev/null") files.add(stripOne(name, patchPath));
  };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const hunk = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
    if (hunk) {
      i = skipHunk(lines, { header: i, old: Number(hunk[1] ?? 1), added: Number(hunk[2] ?? 1), patchPath });
      continue;
    }
    if (line === "***************") {
      throw new KpatchError("PATCH_UNSUPPORTED", "Cannot use a context diff: give a unified diff (diff -u)", {
        file: patchPath,
      });
    }
    if (line.startsWith("diff --git ")) for (const n of gitNames(line.slice(11))) add(n);
    else if (/^(rename|copy) (from|to) /.test(line)) {
      // git names these without the a/ b/ prefix.
      const name = unquote(line.replace(/^\S+ \S+ /, ""));
      files.add(insideTree(name, name, patchPath));
    } else if (line.startsWith("--- ") && lines[i + 1]?.startsWith("+++ ")) {
      add(headerName(line.slice(4)));
      add(headerName(lines[++i]!.slice(4)));
    }
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
  const files = touchedFiles(text, path);
  if (files.length === 0)
    throw new KpatchError("PATCH_EMPTY", "Cannot use the patch: it touches no file", { file: path });
  return { path, files };
}

/**
 * GNU patch on the tree: -p1, never interactive, never a reversed patch (--forward), no backup
 * (.orig) and no reject file (.rej) left in the tree, messages in English (they are parsed).
 */
function runPatch(tree: string, patch: SourcePatch, extra: string[], signal?: AbortSignal) {
  const args = ["-p1", "--batch", "--forward", "--no-backup-if-mismatch", "--reject-file=-", "-d", tree];
  return exec("patch", [...args, "-i", patch.path, ...extra], {
    env: { ...process.env, LC_ALL: "C" },
    ...(signal ? { signal } : {}),
  });
}

/** The hunks patch(1) reports as placed with an offset or fuzz ("Hunk #2 succeeded at 40 ..."). */
function inexactHunks(output: string, patch: string): InexactHunk[] {
  const out: InexactHunk[] = [];
  let file = "";
  for (const line of output.split("\n")) {
    const f = /^(?:checking|patching) file (.*)$/.exec(line);
    if (f) file = f[1]!.replace(/^'(.*)'$/, "$1");
    const h = /^Hunk #(\d+) succeeded at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?\.$/.exec(
      line,
    );
    if (h && (h[3] || h[4])) {
      out.push({
        patch,
        file,
        hunk: Number(h[1]),
        line: Number(h[2]),
        fuzz: Number(h[3] ?? 0),
        offset: Number(h[4] ?? 0),
      });
    }
  }
  return out;
}

export function describeHunk(h: InexactHunk): string {
  const how = [h.fuzz ? `with fuzz ${h.fuzz}` : "", h.offset ? `${h.offset} lines away` : ""].filter(Boolean);
  return `${h.file}: hunk #${h.hunk} of ${h.patch} applies at line ${h.line} ${how.join(", ")}`;
}

/**
 * Apply patches in order, each checked with --dry-run first. PATCH_FAILED names the patch and
 * what patch(1) said; PATCH_INEXACT refuses a hunk placed by offset or fuzz (a live patch built
 * from it may change other lines than the author's) unless `allowFuzz`, in which case the hunks
 * are returned for the caller to warn about. The patches before a failing one stay applied:
 * the tree lock's saved files put the tree back (tree-lock.ts).
 */
export async function applyPatches(
  tree: string,
  patches: readonly SourcePatch[],
  options: { allowFuzz?: boolean; signal?: AbortSignal; onApplied?: () => void } = {},
): Promise<InexactHunk[]> {
  const inexact: InexactHunk[] = [];
  for (const p of patches) {
    throwIfAborted(options.signal);
    const dry = await runPatch(tree, p, ["--dry-run"], options.signal);
    if (dry.code !== 0) {
      throwIfChildStopped(dry, options.signal);
      throw new KpatchError(
        "PATCH_FAILED",
        `Cannot apply the patch to ${tree}:\n${tailLines(`${dry.stdout}${dry.stderr}`, 20)}`,
        { file: p.path },
      );
    }
    const hunks = inexactHunks(dry.stdout, p.path);
    if (hunks.length && !options.allowFuzz) {
      throw new KpatchError(
        "PATCH_INEXACT",
        `Cannot apply the patch exactly (use --allow-fuzz to accept, then check the result):\n${hunks.map(describeHunk).join("\n")}`,
        { file: p.path },
      );
    }
    inexact.push(...hunks);
    const r = await runPatch(tree, p, ["--silent"], options.signal);
    if (r.code !== 0) {
      throwIfChildStopped(r, options.signal);
      throw new KpatchError(
        "PATCH_FAILED",
        `Cannot apply the patch:\n${tailLines(r.stdout + r.stderr, 20)}`,
        {
          file: p.path,
        },
      );
    }
    options.onApplied?.();
  }
  return inexact;
}
