/**
 * The modules of a Debian kernel image package (lib/modules/<KVER>), the one place that reads
 * them: which file a module is (modules.order, compressed or not), its bytes (.ko.xz on 6.12,
 * plain .ko on 6.1: decompressed here), its dependencies (modules.dep, made by depmod once, since
 * the package ships none: its postinst runs depmod) and what is built in (modules.builtin).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { syncDir } from "../util/atomic-write.js";
import { KpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import { moduleNameOf } from "../util/module-name.js";

/** modules.dep: module path (relative to lib/modules/KVER) -> its dependencies' paths. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    deps.set(
      line.slice(0, colon),
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
  }
  return deps;
}

/**
 * The module files to load for `roots`, dependencies first, each once. A root built into the
 * kernel (modules.builtin) needs nothing; one that is neither is an error naming it.
 */
export function loadOrder(
  deps: ReadonlyMap<string, readonly string[]>,
  builtin: ReadonlySet<string>,
  roots: readonly string[],
): string[] {
  const byName = new Map([...deps.keys()].map((p) => [moduleNameOf(p), p]));
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    // modules.dep lists every module a module needs, directly or not; visiting each still
    // puts a dependency's own dependencies before it.
    for (const d of deps.get(path) ?? []) visit(d);
    order.push(path);
  };
  for (const root of roots) {
    const path = byName.get(moduleNameOf(root));
    if (path) visit(path);
    else if (!builtin.has(moduleNameOf(root))) {
      throw new KpatchError(
        "DISTRO_MODULE",
        `Cannot find the module ${root}: not in modules.dep nor built in`,
      );
    }
  }
  return order;
}

/** Module names in a modules.builtin file (kernel/fs/ext4/ext4.ko per line). */
export function parseBuiltin(text: string): Set<string> {
  return new Set(
    text
      .split("\n")
      .filter(Boolean)
      .map((l) => moduleNameOf(l)),
  );
}

/**
 * The modules directory of an unpacked image package: usr/lib/modules/<KVER> in Debian 13's
 * (merged /usr), lib/modules/<KVER> in Debian 12's.
 */
export function imageModulesDir(root: string, kernelRelease: string): string {
  const merged = join(root, "usr", "lib", "modules", kernelRelease);
  return existsSync(merged) ? merged : join(root, "lib", "modules", kernelRelease);
}

/**
 * modules.dep of an unpacked image package's lib/modules/<KVER>, made once at `out` (a
 * directory, complete or absent) by depmod over links to the package's files.
 */
export async function modulesDep(modulesDir: string, kernelRelease: string, out: string): Promise<string> {
  const dep = join(out, "lib", "modules", kernelRelease, "modules.dep");
  if (existsSync(dep)) return dep;
  if (!existsSync(join(modulesDir, "modules.order"))) {
    throw new KpatchError(
      "DISTRO_MODULE",
      `Cannot index the modules of ${kernelRelease}: ${modulesDir} has no modules.order`,
    );
  }
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const dir = join(tmp, "lib", "modules", kernelRelease);
    mkdirSync(dir, { recursive: true });
    for (const f of ["kernel", "modules.order", "modules.builtin", "modules.builtin.modinfo"]) {
      if (existsSync(join(modulesDir, f))) symlinkSync(join(modulesDir, f), join(dir, f));
    }
    await execCheck("depmod", ["-b", tmp, kernelRelease], { what: `depmod for ${kernelRelease}` });
    renameSync(tmp, out);
    syncDir(join(out, ".."));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dep;
}

/** A module file's name without its compression suffix: kernel/fs/9p/9p.ko of 9p.ko.xz. */
export function uncompressedName(path: string): string {
  return path.replace(/\.ko\.(xz|zst|gz)$/, ".ko");
}

const DECOMPRESSORS: [string, string, string[]][] = [
  [".ko.xz", "xz", ["-dc"]],
  [".ko.zst", "zstd", ["-dcq"]],
  [".ko.gz", "gzip", ["-dc"]],
];

/** A module file's bytes, decompressed when its name says it is compressed. */
export function readModule(path: string): Uint8Array {
  const dec = DECOMPRESSORS.find(([ext]) => path.endsWith(ext));
  if (!dec) return readFileSync(path);
  const r = spawnSync(dec[1], [...dec[2], path], { maxBuffer: 256 << 20 });
  if (r.status !== 0 || r.error) {
    const why = r.error?.message ?? r.stderr.toString().trim();
    throw new KpatchError("DISTRO_MODULE", `Cannot decompress ${path} with ${dec[1]}: ${why}`);
  }
  return r.stdout;
}

/**
 * The line of a modules.order text (a build tree's fs/ext4/ext4.o, an image's
 * kernel/fs/ext4/ext4.ko) that names the module `name` (as the kernel spells it), if any.
 */
export function findInModulesOrder(orderText: string, name: string): string | undefined {
  return orderText
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l && moduleNameOf(l) === name);
}

/**
 * The file of module `name` in an image's lib/modules/<KVER> (`modulesDir`): its modules.order
 * line, as shipped or compressed. Throws TARGET_NOT_FOUND naming what is missing.
 */
export function findImageModule(modulesDir: string, name: string): string {
  const order = join(modulesDir, "modules.order");
  const rel = existsSync(order) ? findInModulesOrder(readFileSync(order, "utf8"), name) : undefined;
  if (!rel || rel.includes("..")) {
    throw new KpatchError(
      "TARGET_NOT_FOUND",
      `Cannot find the module ${name} in ${order}: the image does not ship it as a module`,
    );
  }
  const plain = join(modulesDir, uncompressedName(rel));
  const file = ["", ...DECOMPRESSORS.map(([ext]) => ext.slice(3))]
    .map((suffix) => plain + suffix)
    .find((f) => existsSync(f));
  if (!file)
    throw new KpatchError("TARGET_NOT_FOUND", `Cannot find ${plain} (or a compressed copy) in the image`);
  return file;
}
