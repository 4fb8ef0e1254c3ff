/**
 * The objects a patch's touched files reach on a Debian kernel, decided by kbuild for the whole
 * tree (distro-objects' index), never by a guess per directory: a .c or .S file reaches the
 * objects kbuild compiles from it (composite modules included: arch/x86/kvm/vmx/vmx.c is in
 * kvm-intel.ko, listed from arch/x86/kvm/Makefile) and the objects whose source #includes it
 * (kernel/sched/rt.c is compiled inside build_policy.c); a header, the objects that include it.
 * The textual include closure names the candidates (it over-approximates: an #include under an
 * #ifdef counts), kbuild's dependency record of each candidate, written when kbuild first
 * compiles it, confirms them.
 *
 * A .c file that reaches no object is "not built by this config" only when that is proved: it
 * is in the tree, no object of the index is compiled from it, and no object of the index
 * includes it (by kbuild's records), and the dry run that made the index went through its
 * directory. Otherwise kpatch-build cannot tell, and says so (exit 1), never "nothing to patch".
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { KpatchError } from "../../util/errors.js";
import type { Progress } from "../../util/progress.js";
import { includersOf, treeIncludeScan } from "../header-users.js";
import { cmdFile, type KbuildObject, objectsDependingOn } from "../kbuild-tree.js";
import type { KernelObjects } from "../kernel-tree.js";
import {
  fullObjectIndex,
  hasRecord,
  type IndexedObject,
  kbuildObject,
  NOT_PATCHABLE,
  type ObjectIndex,
} from "./distro-objects.js";
import { type DistroTree, distroMake } from "./distro-tree.js";

/** What one touched file may reach: objects compiled from it, objects whose source includes it. */
interface FileReach {
  file: string;
  direct: IndexedObject[];
  included: IndexedObject[];
}

function bySource(index: ObjectIndex): Map<string, IndexedObject[]> {
  const map = new Map<string, IndexedObject[]>();
  for (const o of index.objects) {
    const list = map.get(o.source);
    if (list) list.push(o);
    else map.set(o.source, [o]);
  }
  return map;
}

function cannotTell(file: string, why: string): KpatchError {
  return new KpatchError("DISTRO_INDEX", `Cannot tell which objects of this kernel ${file} reaches: ${why}`, {
    file,
  });
}

/** A touched file's object that kpatch-build cannot take as a target: refused, saying why. */
function checkPatchable(r: FileReach): void {
  for (const o of [...r.direct, ...r.included]) {
    if (o.target.includes(":")) {
      throw cannotTell(
        r.file,
        `kbuild links ${o.path} into several modules (${o.target.split(":").join(", ")}), and a live patch replaces the code of one`,
      );
    }
  }
  const boot = r.direct.find((o) => NOT_PATCHABLE.test(o.source));
  if (boot) {
    throw new KpatchError(
      "DISTRO_INDEX",
      `Cannot patch ${r.file}: kbuild builds it into ${boot.path}, boot, real-mode or vDSO code, which a live patch cannot replace`,
      { file: r.file },
    );
  }
}

/** kbuild's record of each object that has none yet: `make obj.o` (normal flags) leaves it. */
async function recordObjects(
  tree: DistroTree,
  objects: readonly IndexedObject[],
  jobs: number,
  progress: Progress,
) {
  const missing = objects.filter((o) => !hasRecord(tree.buildDir, o.path));
  for (let i = 0; i < missing.length; i += 200) {
    const chunk = missing.slice(i, i + 200);
    progress.update(`kbuild records: make ${i + chunk.length}/${missing.length} objects`);
    const r = await tree.run("make", distroMake(tree, `-j${jobs}`, ...chunk.map((o) => o.path)));
    if (r.code !== 0) {
      throw new KpatchError(
        "BUILD_FAILED",
        `Cannot compile the original objects with kbuild:\n${r.stderr.split("\n").slice(-15).join("\n")}`,
      );
    }
  }
}

/** The included candidates whose kbuild record lists `file` among its dependencies. */
function confirmedIncluders(tree: DistroTree, r: FileReach): KbuildObject[] {
  const withCmd = r.included.map((o) => ({
    obj: kbuildObject(o, tree.srcDir),
    cmd: readFileSync(cmdFile(tree.buildDir, o.path), "utf8"),
  }));
  return objectsDependingOn(withCmd, [join(tree.srcDir, r.file)], tree.buildDir);
}

/**
 * The directories a failed dry run leaves unsure: each failed target that no deeper failure
 * explains (make -k goes on with the siblings; a parent fails only because its child did),
 * as a directory, or the directory of a failed file.
 */
export function unsureDirs(failed: readonly string[], isDir: (path: string) => boolean): string[] {
  const real = failed.filter((t) => t !== "." && !t.startsWith("__"));
  const leaves = real.filter((t) => !real.some((u) => u.startsWith(`${t}/`)));
  return [...new Set(leaves.map((t) => (isDir(t) ? t : dirname(t))))];
}

/**
 * Why a .c/.S file that reaches no object is not built by this config, proved from the index;
 * a "cannot tell" error when the index cannot prove it.
 */
export function notBuiltProof(
  file: string,
  index: ObjectIndex,
  includers: readonly IndexedObject[],
  srcDir: string,
): string {
  if (!existsSync(join(srcDir, file))) {
    throw cannotTell(
      file,
      "it is not in the unpatched tree, and kbuild's object index is the unpatched tree's (a new file needs its Makefile changed)",
    );
  }
  const isDir = (p: string) => existsSync(join(srcDir, p)) && statSync(join(srcDir, p)).isDirectory();
  const unsure = unsureDirs(index.failed, isDir).find((d) => d === "." || file.startsWith(`${d}/`));
  if (unsure) throw cannotTell(file, `kbuild's dry run over this config failed in ${unsure}/`);
  const include = includers.length
    ? `kbuild's records of the ${includers.length} objects whose source may #include it (${includers
        .slice(0, 3)
        .map((o) => o.path)
        .join(", ")}${includers.length > 3 ? ", ..." : ""}) do not list it`
    : "none of their sources #includes it";
  return `not built by this config: kbuild compiles none of the config's ${index.objects.length} objects from it, and ${include}`;
}

/** The objects `touched` (relative to the source tree) reach, each with a kbuild record. */
export async function touchedObjects(
  tree: DistroTree,
  touched: readonly string[],
  jobs: number,
  progress: Progress,
): Promise<KernelObjects> {
  progress.begin("find objects", "kbuild's index of the objects this config builds");
  progress.update("every object this config builds (kbuild dry run, once per kernel version)");
  const index = await fullObjectIndex(tree);
  const files = touched.filter((f) => /\.[chS]$/.test(f));
  if (files.length === 0) return { candidates: [], total: index.objects.length };
  progress.update("include closure of the touched files");
  const scan = treeIncludeScan(tree);
  const sources = bySource(index);
  const reach = files.map((file): FileReach => {
    const direct = file.endsWith(".h") ? [] : (sources.get(file) ?? []);
    const included = [...includersOf(scan, file)]
      .flatMap((s) => sources.get(s) ?? [])
      .filter((o) => !direct.includes(o) && !NOT_PATCHABLE.test(o.source));
    return { file, direct, included };
  });
  for (const r of reach) checkPatchable(r);
  await recordObjects(tree, [...new Set(reach.flatMap((r) => [...r.direct, ...r.included]))], jobs, progress);
  const candidates = new Map<string, KbuildObject>();
  for (const r of reach) {
    const reached = [...r.direct.map((o) => kbuildObject(o, tree.srcDir)), ...confirmedIncluders(tree, r)];
    for (const o of reached) candidates.set(o.path, o);
    if (reached.length === 0 && !r.file.endsWith(".h")) {
      const proof = notBuiltProof(r.file, index, r.included, tree.srcDir);
      progress.note(`${r.file}: ${proof}`);
    }
  }
  return { candidates: [...candidates.values()], total: index.objects.length };
}
