/**
 * The modules a stock kernel needs in the lab guest (virtio PCI, 9p for the host share,
 * virtio-blk and ext4 for the disk), taken from the image package with their dependencies.
 * Debian's image package ships no modules.dep (its postinst runs depmod), so depmod runs once
 * over a directory that links to the package's modules and keeps its output beside them.
 * Modules may be compressed (.ko.xz on 6.12, plain .ko on 6.1): they go into the initramfs
 * decompressed, since the guest's busybox insmod passes the bytes to init_module as they are.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { syncDir } from "../util/atomic-write.js";
import { KpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import { moduleNameOf } from "../util/module-name.js";
import { type CpioEntry, parentDirs, S_IFREG } from "./cpio.js";

/**
 * What the guest loads at boot, in this order (each after its dependencies). The /init of the
 * lab mounts 9p and the disk after them; crc32c is what ext4's checksums ask the crypto API for.
 */
export const GUEST_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "virtio_blk", "crc32c_generic", "ext4"];

/** The list /init reads: module paths below /lib/modules, one a line, dependencies first. */
const GUEST_LOAD_LIST = "lib/modules/kplab.load";

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
 * modules.dep of an unpacked image package's lib/modules/<kver>, made once at `out` (a
 * directory, complete or absent) by depmod over links to the package's files.
 */
export async function modulesDep(modulesDir: string, kver: string, out: string): Promise<string> {
  const dep = join(out, "lib", "modules", kver, "modules.dep");
  if (existsSync(dep)) return dep;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const dir = join(tmp, "lib", "modules", kver);
    mkdirSync(dir, { recursive: true });
    for (const f of ["kernel", "modules.order", "modules.builtin", "modules.builtin.modinfo"]) {
      if (existsSync(join(modulesDir, f))) symlinkSync(join(modulesDir, f), join(dir, f));
    }
    await execCheck("depmod", ["-b", tmp, kver], { what: `depmod for ${kver}` });
    renameSync(tmp, out);
    syncDir(join(out, ".."));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dep;
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

/** The guest path of a module (below lib/modules), with the compression suffix dropped. */
export function guestModulePath(kver: string, path: string): string {
  return `${kver}/${path.replace(/\.ko\.(xz|zst|gz)$/, ".ko")}`;
}

/**
 * The initramfs entries for the guest modules of an unpacked image: each module of `order`
 * (paths relative to `modulesDir`) decompressed at /lib/modules/<kver>/..., and the load list.
 */
export function moduleEntries(modulesDir: string, kver: string, order: readonly string[]): CpioEntry[] {
  const files: CpioEntry[] = order.map((p) => ({
    name: `lib/modules/${guestModulePath(kver, p)}`,
    mode: S_IFREG | 0o644,
    data: readModule(join(modulesDir, p)),
  }));
  const list = order.map((p) => `${guestModulePath(kver, p)}\n`).join("");
  files.push({ name: GUEST_LOAD_LIST, mode: S_IFREG | 0o644, data: new TextEncoder().encode(list) });
  return [...parentDirs(files.map((f) => f.name)), ...files];
}
