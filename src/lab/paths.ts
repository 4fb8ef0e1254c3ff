/**
 * Where the lab keeps its files, below the one cache (src/util/cache-dir.ts):
 *
 *   src/<package-version>/linux-source-<series>/   unpacked Debian kernel source (read-only use)
 *   lab/<series>-<key>/build/                      O= build tree of the lab kernel (normal flags)
 *   lab/<series>-<key>/initramfs.cpio.gz           the busybox initramfs
 *   lab/<series>-<key>/ready.json                  written last: the setup is complete
 *   lab/current-<series>                           symlink to the newest complete setup
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cachePath } from "../util/cache-dir.js";

export type KernelSeries = "6.12" | "6.1";
export const KERNEL_SERIES: readonly KernelSeries[] = ["6.12", "6.1"];
export const DEFAULT_SERIES: KernelSeries = "6.12";

/** The series the lab tests run on: $KPATCH_LAB_SERIES (e.g. 6.1), else the default. */
export function testSeries(): KernelSeries {
  const s = process.env["KPATCH_LAB_SERIES"] ?? DEFAULT_SERIES;
  if (!(KERNEL_SERIES as readonly string[]).includes(s))
    throw new Error(`KPATCH_LAB_SERIES=${s}: not a lab series`);
  return s as KernelSeries;
}

/** The Debian suite of the stock kernel the distro tests run on: $KPATCH_LAB_SUITE (trixie), else this machine's. */
export function testSuite(): string | undefined {
  return process.env["KPATCH_LAB_SUITE"] || undefined;
}

export function currentLabLink(series: KernelSeries): string {
  return cachePath("lab", `current-${series}`);
}

/** The O= build tree of the newest complete lab setup of a series (it may not exist yet). */
export function labBuildDir(series: KernelSeries): string {
  return join(currentLabLink(series), "build");
}

/** Build trees of the complete lab setups, newest series first; empty when none is set up. */
export function labObjectTrees(): string[] {
  const trees: string[] = [];
  for (const series of KERNEL_SERIES) {
    const dir = currentLabLink(series);
    if (existsSync(join(dir, "ready.json"))) trees.push(join(dir, "build"));
  }
  return trees;
}

/** Every object file (*.o, *.ko) under a directory, sorted, for corpus tests and benchmarks. */
export function listObjects(dir: string, exts: readonly string[] = [".o", ".ko"]): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile() && exts.some((e) => ent.name.endsWith(e))) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

export function readJsonIfExists<T>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as T;
}
