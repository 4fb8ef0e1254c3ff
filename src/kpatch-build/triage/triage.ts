/**
 * Triage of a Debian stable update: which of its fixes can go live on one packaged kernel. Each
 * changed .c file of the update is one fix, built alone with the ordinary pipeline for the older
 * kernel; a fix that does not compile alone is tried again with the changed headers it includes
 * (kbuild's dependency record of its objects). Each result is kept in a cache of its own (keyed by the fix's patch
 * text and the tool's version), so a run stopped half-way goes on where it stopped. Fixes are
 * never merged into one module: a person reviews and picks.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { isKpatchError } from "../../util/errors.js";
import { MODULE_NAME_MAX } from "../../util/module-name.js";
import { Progress } from "../../util/progress.js";
import { includersOf, treeIncludeScan } from "../header-users.js";
import { readKbuildCmd } from "../kbuild-tree.js";
import type { KernelTree } from "../kernel-tree.js";
import { kpatchBuild, NO_OBJECT_REACHED } from "../kpatch-build.js";
import { filesPatch, type UpdateChanges } from "./update-diff.js";

/** What became of one fix. */
export type TriageOutcome =
  | "built" // a module was built: it can go live
  | "refused" // kpatch-build refused it (the code and message say why)
  | "nothing" // it changes no function of this kernel's objects
  | "not-built" // kbuild's index proves no object of this config is built from the file
  | "no-compile" // it does not compile for this kernel, alone or with its headers
  | "error"; // anything else (the code and message say what)

export interface TriageFix {
  /** The changed .c file (relative to the tree). */
  file: string;
  /** Changed headers added to make it compile (empty when it built alone). */
  headers: string[];
  outcome: TriageOutcome;
  /** The module, copied to the output directory (outcome "built"). */
  module?: string;
  /** Functions the module replaces, per target object ("vmlinux", or a module's name). */
  functions?: { target: string; name: string }[];
  /** The error's stable code and one-line message (every outcome but "built"). */
  code?: string;
  message?: string;
  /** Wall time of the build(s), in seconds (0 when taken from the cache). */
  seconds: number;
  cached?: boolean;
}

export interface TriageOptions {
  tree: KernelTree;
  oldDir: string;
  newDir: string;
  changes: UpdateChanges;
  /** Only fixes whose file starts with one of these (all when empty). */
  only: readonly string[];
  outDir: string;
  /** One folder per fix's result, below which results are kept between runs. */
  cacheDir: string;
  /** The tool's version: a cached result of another version is not reused. */
  toolVersion: string;
  jobs: number;
  progress: Progress;
  /** Rebuild every fix even when a result is cached. */
  fresh?: boolean;
  signal?: AbortSignal;
}

/** The module name for a fix: livepatch-<path with / and . as ->, shortened with a hash when long. */
export function fixModuleName(file: string): string {
  const base = `livepatch-${file.replace(/\.c$/, "").replace(/[^A-Za-z0-9_]/g, "-")}`;
  if (base.length <= MODULE_NAME_MAX) return base;
  const hash = createHash("sha256").update(file).digest("hex").slice(0, 8);
  return `${base.slice(0, MODULE_NAME_MAX - 9)}-${hash}`;
}

/**
 * The changed headers that `file`'s objects were compiled with, as kbuild recorded them (the
 * first attempt compiled the originals, which leaves the records): exactly what the fix may need,
 * not every header a textual scan says it might include under some other config or arch.
 */
async function headersOf(file: string, changes: UpdateChanges, tree: KernelTree): Promise<string[]> {
  if (!changes.headers.length || !tree.findObjects) return [];
  const found = await tree.findObjects([file], new Progress({ quiet: true }));
  const deps = new Set<string>();
  for (const o of found.candidates) {
    try {
      for (const d of readKbuildCmd(tree.buildDir, o.path).deps) deps.add(d);
    } catch {
      // No record: the object did not compile even as the original; nothing to learn from it.
    }
  }
  return changes.headers.filter((h) => deps.has(join(tree.srcDir, h)) || deps.has(h));
}

/** Past this many including sources a header's change means a rebuild of much of the kernel. */
const TRIAGE_HEADER_USERS_MAX = 300;

/** The first of `headers` that more than TRIAGE_HEADER_USERS_MAX sources may include, if any. */
function wideHeader(
  headers: readonly string[],
  tree: KernelTree,
): { header: string; users: number } | undefined {
  const scan = treeIncludeScan(tree);
  for (const header of headers) {
    const users = [...includersOf(scan, header)].filter((f) => f.endsWith(".c")).length;
    if (users > TRIAGE_HEADER_USERS_MAX) return { header, users };
  }
  return undefined;
}

interface Attempt {
  outcome: TriageOutcome;
  module?: string;
  functions?: { target: string; name: string }[];
  code?: string;
  message?: string;
}

async function buildFix(o: TriageOptions, fix: string, files: string[], dir: string): Promise<Attempt> {
  const patch = join(dir, `${fixModuleName(fix)}.patch`);
  writeFileSync(patch, await filesPatch(o.oldDir, o.newDir, files));
  try {
    const r = await kpatchBuild({
      tree: o.tree,
      patches: [patch],
      name: fixModuleName(fix),
      outDir: dir,
      replace: true,
      jobs: o.jobs,
      skipCleanup: false,
      // Each build's own steps show under the triage's line for the fix (a first build of a
      // kernel version makes the object index: minutes, which must not look like a hang).
      progress: o.progress,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const functions = r.objects.flatMap((x) =>
      x.report.changed.map((c) => ({ target: x.target, name: c.name })),
    );
    return { outcome: "built", module: r.module, functions };
  } catch (e) {
    if (!isKpatchError(e)) throw e;
    if (e.code === "INTERRUPTED") throw e;
    const message = e.format().split("\n")[0]!;
    const outcome: TriageOutcome =
      e.code === "BUILD_FAILED"
        ? "no-compile"
        : e.code === "NO_CHANGES"
          ? e.message === NO_OBJECT_REACHED
            ? "not-built"
            : "nothing"
          : e.code.startsWith("DIFF_") || e.code.startsWith("RUNPRE_")
            ? "refused"
            : "error";
    return { outcome, code: e.code, message };
  }
}

function resultKey(o: TriageOptions, fix: string, patchText: string): string {
  return createHash("sha256")
    .update(`${o.toolVersion}\0${o.tree.cacheKey}\0${fix}\0${patchText}`)
    .digest("hex")
    .slice(0, 16);
}

/** Triage one fix: from its cached result when there is one, else built (and cached). */
async function triageFix(o: TriageOptions, fix: string): Promise<TriageFix> {
  const key = resultKey(o, fix, await filesPatch(o.oldDir, o.newDir, [fix]));
  const dir = join(o.cacheDir, key);
  const resultFile = join(dir, "result.json");
  if (!o.fresh && existsSync(resultFile)) {
    const cached = JSON.parse(readFileSync(resultFile, "utf8")) as TriageFix;
    if (!cached.module || existsSync(cached.module)) return { ...cached, seconds: 0, cached: true };
  }
  mkdirSync(dir, { recursive: true });
  const start = performance.now();
  let headers: string[] = [];
  let attempt = await buildFix(o, fix, [fix], dir);
  if (attempt.outcome === "no-compile") {
    headers = await headersOf(fix, o.changes, o.tree);
    const wide = headers.length ? wideHeader(headers, o.tree) : undefined;
    if (wide) {
      attempt = {
        ...attempt,
        message: `${attempt.message} (it needs ${headers.join(" ")}; ${wide.header} is included by ${wide.users} sources: too many to rebuild in a triage, build it with those headers by hand)`,
      };
    } else if (headers.length) {
      o.progress.note(`${fix}: does not compile alone; again with ${headers.join(" ")}`);
      attempt = await buildFix(o, fix, [fix, ...headers], dir);
    }
  }
  const result: TriageFix = {
    file: fix,
    headers,
    ...attempt,
    seconds: Math.round((performance.now() - start) / 100) / 10,
  };
  // The result names the cached module; it is complete before the result says so.
  writeFileAtomic(resultFile, JSON.stringify(result, null, 1));
  return result;
}

/** Triage every fix of the update (those under `only`), in file order. */
export async function triageUpdate(o: TriageOptions): Promise<TriageFix[]> {
  const fixes = o.changes.sources.filter((f) => !o.only.length || o.only.some((p) => f.startsWith(p)));
  const out: TriageFix[] = [];
  mkdirSync(o.outDir, { recursive: true });
  for (const [i, fix] of fixes.entries()) {
    o.progress.note(`[triage] ${i + 1}/${fixes.length} ${fix}`);
    const r = await triageFix(o, fix);
    if (r.module) {
      const copy = join(o.outDir, `${fixModuleName(fix)}.ko`);
      copyFileSync(r.module, copy);
      r.module = copy;
    }
    out.push(r);
  }
  return out;
}
