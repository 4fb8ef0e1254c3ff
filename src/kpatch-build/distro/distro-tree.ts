/**
 * The build tree for a Debian kernel, prepared once per kernel version from Debian's packages
 * and never by building the kernel: the linux-source tree (shared, unpacked once under the
 * cache), an O= output tree configured with the headers package's full .config (`make
 * olddefconfig` must change nothing that changes code), `make modules_prepare` (generated
 * headers, objtool, modpost, sign-file), the headers' Module.symvers (CRCs for MODVERSIONS)
 * and BTF base vmlinux. Which objects this config builds is learnt later, for the whole tree
 * at once, by the first patch (distro-objects' index, kbuild's dry run).
 * Objects are then compiled on demand by kbuild's own single-object rules, which leave the
 * .cmd records the rest of kpatch-build reads. The tree is keyed by the three packages'
 * versions, the config and the compiler, and is complete or absent (ready.json written last).
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { DistroInputs } from "../../debian/kernel-packages.js";
import { upstreamVersion } from "../../debian/kernel-release.js";
import { unpackKernelSource } from "../../debian/kernel-source.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { cachePath } from "../../util/cache-dir.js";
import { KpatchError } from "../../util/errors.js";
import { execCheck, type Runner } from "../../util/exec.js";
import type { Progress } from "../../util/progress.js";
import { type KernelConfig, parseConfig, readConfig } from "../kernel-config.js";
import { TreeLock } from "../tree-lock.js";
import { distroToolchain } from "./distro-compiler.js";

export interface DistroTree {
  inputs: DistroInputs;
  srcDir: string;
  buildDir: string;
  /** The compiler that built the kernel (CONFIG_CC_VERSION_TEXT's first word). */
  cc: string;
  /** Arguments every make in this tree takes. */
  makeArgs: string[];
  /** How the tree's commands run: here, or in a build root with the kernel's compiler. */
  run: Runner;
  key: string;
}

/** Lines Debian drops from the config it installs in /boot (they name build-host files). */
const STRIPPED_IN_BOOT = new Set([
  "CONFIG_BUILD_SALT",
  "CONFIG_MODULE_SIG_ALL",
  "CONFIG_MODULE_SIG_KEY",
  "CONFIG_SYSTEM_TRUSTED_KEYS",
]);

/**
 * Options olddefconfig may set differently without changing the kernel's code: versions of
 * toolchains this config does not use (Rust is off in Debian's 6.1 and 6.12 configs; an
 * installed rustc only changes these probes).
 */
const TOOL_PROBES = /^CONFIG_RUSTC_/;

function diffConfigs(a: KernelConfig, b: KernelConfig, skip: (o: string) => boolean): string[] {
  const out: string[] = [];
  for (const o of new Set([...a.keys(), ...b.keys()])) {
    if (skip(o)) continue;
    const x = a.get(o) ?? "n";
    const y = b.get(o) ?? "n";
    if (x !== y) out.push(`${o}: ${x} / ${y}`);
  }
  return out;
}

/** The packages must be one build: same version, and the image's config is the headers' one. */
function checkInputs(inputs: DistroInputs): void {
  const { image, headers, source } = inputs.versions;
  if (image !== headers || image !== source) {
    throw new KpatchError(
      "DISTRO_VERSION_MISMATCH",
      `Cannot build for ${inputs.release.kernelRelease}: its packages are of different versions (image ${image}, headers ${headers}, linux-source-${inputs.release.series} ${source}); kpatch-build needs the source at exactly the image's version`,
    );
  }
  const full = readConfig(join(inputs.headersDir, ".config"));
  const boot = readConfig(inputs.imageConfig);
  const bad = diffConfigs(full, boot, (o) => STRIPPED_IN_BOOT.has(o));
  if (bad.length) {
    throw new KpatchError(
      "DISTRO_CONFIG_MISMATCH",
      `Cannot build for ${inputs.release.kernelRelease}: ${inputs.imageConfig} and the headers' .config differ (${bad.length} options, e.g. ${bad.slice(0, 3).join("; ")})`,
      { file: inputs.imageConfig },
    );
  }
}

function makefileVersion(srcDir: string): string {
  const text = readFileSync(join(srcDir, "Makefile"), "utf8").slice(0, 2000);
  const get = (k: string) => new RegExp(`^${k} = (\\d*)$`, "m").exec(text)?.[1] ?? "";
  return `${get("VERSION")}.${get("PATCHLEVEL")}.${get("SUBLEVEL")}`;
}

export function distroMake(tree: Pick<DistroTree, "srcDir" | "buildDir" | "makeArgs">, ...args: string[]) {
  return ["-C", tree.srcDir, `O=${tree.buildDir}`, ...tree.makeArgs, ...args];
}

/** Prepare (or find in the cache) the tree for `inputs`. */
export async function prepareDistroTree(inputs: DistroInputs, progress: Progress): Promise<DistroTree> {
  checkInputs(inputs);
  const configPath = join(inputs.headersDir, ".config");
  const configText = readFileSync(configPath, "utf8");
  const config = parseConfig(configText);
  const toolchain = await distroToolchain({ config, configPath, release: inputs.release, progress });
  const { cc, run } = toolchain;
  const { kernelRelease, series } = inputs.release;
  const key = createHash("sha256")
    .update(JSON.stringify([inputs.versions, config.get("CONFIG_CC_VERSION_TEXT"), "distro-tree-1"]))
    .update(configText)
    .digest("hex")
    .slice(0, 12);
  const top = cachePath("distro", `${kernelRelease}-${key}`);
  const buildDir = join(top, "build");
  const makeArgs = [`CC=${cc}`, `KERNELRELEASE=${kernelRelease}`];
  const srcDir = await unpackKernelSource({
    series,
    version: inputs.versions.source,
    tarball: inputs.sourceTarball,
    progress,
  });
  const tree: DistroTree = { inputs, srcDir, buildDir, cc, makeArgs, run, key };
  const upstream = upstreamVersion(inputs.versions.source);
  if (makefileVersion(srcDir) !== upstream) {
    throw new KpatchError(
      "DISTRO_VERSION_MISMATCH",
      `Cannot use ${srcDir}: its Makefile says ${makefileVersion(srcDir)}, the kernel is ${upstream}`,
    );
  }
  const ready = join(top, "ready.json");
  progress.begin("prepare tree", `${kernelRelease} (${buildDir})`);
  if (existsSync(ready)) {
    progress.end("cached");
    return tree;
  }
  // One run prepares it; another run for the same tree (two kpatch-builds for a new release,
  // two test files) waits, then finds it ready, instead of having the build directory removed
  // under its make.
  mkdirSync(top, { recursive: true });
  const lock = await TreeLock.acquire(top, {
    // Preparing takes ~3 min on 2 idle cores, several times that on a loaded machine.
    timeoutMs: 1_800_000,
    onWait: (pid) => progress.note(`waiting for another run (pid ${pid}) preparing ${top}`),
  });
  try {
    if (existsSync(ready)) {
      progress.end("prepared by another run");
      return tree;
    }
    await buildDistroTree({ tree, config, configPath, ready, buildRoot: toolchain.buildRoot, progress });
  } finally {
    lock.release();
  }
  progress.end("ready");
  return tree;
}

/** Configures `tree`'s build directory from Debian's config and prepares it for module builds. */
async function buildDistroTree(o: {
  tree: DistroTree;
  config: KernelConfig;
  configPath: string;
  /** Written last: the tree is complete. */
  ready: string;
  buildRoot: string | undefined;
  progress: Progress;
}) {
  const { tree, config, configPath, progress } = o;
  const { buildDir, run, cc, inputs } = tree;
  const { kernelRelease } = inputs.release;
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  copyFileSync(configPath, join(buildDir, ".config"));
  await execCheck("make", distroMake(tree, "olddefconfig"), { what: "make olddefconfig", run });
  const changed = diffConfigs(config, readConfig(join(buildDir, ".config")), (o) => TOOL_PROBES.test(o));
  if (changed.length) {
    throw new KpatchError(
      "DISTRO_CONFIG_CHANGED",
      `Cannot prepare ${kernelRelease}: make olddefconfig changes Debian's config, so this source does not match it (${changed.slice(0, 5).join("; ")})${changed.some((c) => c.startsWith("CONFIG_PAHOLE_VERSION")) ? "; pahole decides BTF: apt-get install dwarves" : ""}`,
      { file: configPath },
    );
  }
  progress.update("make modules_prepare");
  await execCheck("make", distroMake(tree, "-j2", "modules_prepare"), { what: "make modules_prepare", run });
  // One object compiled by kbuild: its record is what entry sizes are measured with.
  await execCheck("make", distroMake(tree, "kernel/sys_ni.o"), { what: "make kernel/sys_ni.o", run });
  // CRCs of every exported symbol (MODVERSIONS) and the BTF base modules are checked against.
  copyFileSync(join(inputs.headersDir, "Module.symvers"), join(buildDir, "Module.symvers"));
  // The BTF base (a .BTF-only vmlinux) when the headers ship one: modules then get BTF the
  // kernel checks against its own; without it kbuild builds them without BTF, which loads too.
  const btfBase = join(inputs.headersDir, "vmlinux");
  if (existsSync(btfBase)) copyFileSync(btfBase, join(buildDir, "vmlinux"));
  writeFileAtomic(
    o.ready,
    `${JSON.stringify({ kernelRelease, versions: inputs.versions, cc, buildRoot: o.buildRoot ?? null }, null, 2)}\n`,
  );
}
