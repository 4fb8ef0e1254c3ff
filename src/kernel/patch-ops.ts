/**
 * Loading and unloading a patch module on the running kernel, the way kpatch does it:
 *   load:   checks (root, livepatch, livepatch module, vermagic) → insmod → wait for the
 *           transition; stalled → disable, wait, rmmod (the system is as before) → error
 *   unload: disable → wait; stalled → enable again, wait (the patch stays) → error;
 *           done → rmmod
 * What is checked is what is loaded: insmod gets a private copy of the bytes read (modules.ts).
 * The run-pre check is the caller's (kpatch's cli injects it as `verify`): this layer imports
 * nothing from run-pre.
 */
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { ElfFile } from "../elf/index.js";
import { KpatchError } from "../util/errors.js";
import { moduleNameOf } from "../util/module-name.js";
import {
  KERNEL_PATHS,
  type KernelPaths,
  requireLivepatch,
  requireRoot,
  runningRelease,
} from "./kernel-paths.js";
import { findPatch, isPatchRegistered, patchInTransition, setPatchEnabled } from "./livepatch-sysfs.js";
import { type ModuleInfo, readModuleFile, vermagicRelease } from "./modinfo.js";
import { moduleSignature, signaturesEnforced } from "./module-signature.js";
import {
  findLoadedModule,
  insertModule,
  isLivepatchModule,
  isModuleLoaded,
  removeModule,
} from "./modules.js";
import { type BlockingTask, describeTask, type TaskState } from "./tasks.js";
import { type TransitionOptions, waitForTransition } from "./transition.js";

export interface PatchOpResult {
  name: string;
  /** What happened: loaded, re-enabled, unloaded (or removed: a replaced patch's module). */
  action: "loaded" | "enabled" | "unloaded" | "removed";
  elapsedMs: number;
  signalled: TaskState[];
  /** load: what the pre-load check (LoadOptions.verify) returned. */
  runPre?: object;
}

export interface PatchOpOptions extends TransitionOptions {
  paths?: KernelPaths;
}

export interface LoadOptions extends PatchOpOptions {
  /**
   * Runs on the module as read (the bytes insmod gets), before insmod; throws to refuse the
   * load, and what it returns goes into the result. kpatch gives the run-pre check.
   */
  verify: (elf: ElfFile, paths: KernelPaths) => object;
}

/**
 * A transition that did not finish in time and was backed out: the system is as it was before
 * the command. `blockers` are the tasks that kept it from finishing.
 */
export class TransitionStalledError extends KpatchError {
  readonly patch: string;
  readonly blockers: BlockingTask[];

  constructor(patch: string, verb: string, seconds: number, blockers: BlockingTask[], backout: string) {
    const lines = blockers.length
      ? blockers.map((t) => `  ${describeTask(t)}`)
      : ["  (no task reports a pending state: the transition may have just finished)"];
    super(
      "KPATCH_TRANSITION_STALLED",
      `Cannot ${verb} ${patch}: the transition did not finish within ${seconds} s; blocked by:\n${lines.join("\n")}\n${backout}`,
    );
    this.patch = patch;
    this.blockers = blockers;
  }
}

/** Refusals that need no kernel change: not a livepatch module, another kernel's module. */
export function checkPatchModule(info: ModuleInfo, kernelRelease: string): void {
  if (!info.livepatch) {
    throw new KpatchError(
      "KPATCH_NOT_LIVEPATCH",
      `Cannot use ${info.name}: not a livepatch module (its .modinfo has no livepatch=Y)`,
      { file: info.path },
    );
  }
  if (!info.vermagic) {
    throw new KpatchError("KPATCH_VERMAGIC", `Cannot use ${info.name}: it has no vermagic`, {
      file: info.path,
    });
  }
  const built = vermagicRelease(info.vermagic);
  if (built !== kernelRelease) {
    throw new KpatchError(
      "KPATCH_VERMAGIC",
      `Cannot use ${info.name}: it was built for kernel ${built} (vermagic "${info.vermagic.trim()}"), not for ${kernelRelease}`,
      { file: info.path },
    );
  }
}

export async function loadPatch(file: string, options: LoadOptions): Promise<PatchOpResult> {
  const paths = options.paths ?? KERNEL_PATHS;
  requireRoot(`load ${file}`);
  requireLivepatch(`load ${file}`, paths);
  const { info, elf, bytes } = readModuleFile(file);
  checkPatchModule(info, runningRelease());
  const name = info.name;
  const busy = patchInTransition(paths);
  if (busy) throw busyError(`load ${name}`, busy.name);

  const existing = findPatch(name, paths);
  if (existing?.enabled) {
    throw new KpatchError("KPATCH_ALREADY_LOADED", `Cannot load ${name}: it is already loaded and enabled`, {
      file,
    });
  }
  let action: PatchOpResult["action"] = "loaded";
  let runPre: object | undefined;
  if (existing) {
    options.log?.(`${name}: loaded but disabled; enabling it`);
    setPatchEnabled(name, true, paths);
    action = "enabled";
  } else {
    if (isModuleLoaded(name, paths)) {
      throw new KpatchError(
        "KPATCH_ALREADY_LOADED",
        `Cannot load ${name}: the module is loaded but its patch is not registered (replaced or disabled); unload it first with 'kpatch unload ${name}'`,
        { file },
      );
    }
    requireRealKernel(paths, `load ${name}`);
    if (signaturesEnforced(paths) && !moduleSignature(bytes)) {
      throw new KpatchError(
        "KPATCH_UNSIGNED",
        `Cannot load ${name}: the kernel enforces module signatures (sig_enforce) and ${file} is not signed; build it with 'kpatch-build --sign KEY CERT' and a key the kernel trusts`,
        { file },
      );
    }
    runPre = options.verify(elf, paths);
    await insertModule(bytes, name, file);
  }
  const r = await waitForTransition(name, options);
  if (r.done)
    return { name, action, elapsedMs: r.elapsedMs, signalled: r.signalled, ...(runPre ? { runPre } : {}) };

  // Back out: reverse the transition, wait for it, unload what we loaded.
  const seconds = Math.round(r.elapsedMs / 1000);
  options.log?.(`${name}: transition stalled; backing the patch out`);
  setPatchEnabled(name, false, paths);
  const back = await waitForTransition(name, { ...options, signalAfterMs: 0 });
  if (!back.done) {
    throw new KpatchError(
      "KPATCH_BACKOUT_FAILED",
      `Cannot load ${name}: the transition stalled, and backing it out stalled too; the patch is left in transition:\n${back.blockers.map((t) => `  ${describeTask(t)}`).join("\n")}`,
    );
  }
  let backout = "The patch was backed out: disabled";
  if (action === "loaded") {
    await removeModuleWhenFree(name, paths);
    backout += " and unloaded";
  }
  throw new TransitionStalledError(name, "load", seconds, r.blockers, `${backout}; the system is as before.`);
}

export async function unloadPatch(nameOrFile: string, options: PatchOpOptions = {}): Promise<PatchOpResult> {
  const paths = options.paths ?? KERNEL_PATHS;
  const name = patchNameOf(nameOrFile);
  requireRoot(`unload ${name}`);
  requireLivepatch(`unload ${name}`, paths);
  const patch = findPatch(name, paths);
  if (!patch) {
    const module = findLoadedModule(name, paths);
    if (module && isLivepatchModule(module)) {
      // A patch replaced by a cumulative one (or already disabled): only the module is left.
      await removeModuleWhenFree(name, paths);
      return { name, action: "removed", elapsedMs: 0, signalled: [] };
    }
    if (module) {
      throw new KpatchError(
        "KPATCH_NOT_LIVEPATCH",
        `Cannot unload ${name}: it is a module but not a live patch (use rmmod for other modules)`,
      );
    }
    throw new KpatchError("KPATCH_NOT_LOADED", `Cannot unload ${name}: no such patch is loaded`);
  }
  const busy = patchInTransition(paths);
  if (busy && busy.name !== name) throw busyError(`unload ${name}`, busy.name);
  if (patch.enabled) setPatchEnabled(name, false, paths);
  const r = await waitForTransition(name, options);
  if (!r.done) {
    const seconds = Math.round(r.elapsedMs / 1000);
    options.log?.(`${name}: transition stalled; enabling the patch again`);
    setPatchEnabled(name, true, paths);
    const back = await waitForTransition(name, { ...options, signalAfterMs: 0 });
    if (!back.done) {
      throw new KpatchError(
        "KPATCH_BACKOUT_FAILED",
        `Cannot unload ${name}: disabling stalled, and enabling it again stalled too; the patch is left in transition:\n${back.blockers.map((t) => `  ${describeTask(t)}`).join("\n")}`,
      );
    }
    throw new TransitionStalledError(
      name,
      "unload",
      seconds,
      r.blockers,
      "The patch was enabled again and stays loaded; the system is as before.",
    );
  }
  await removeModuleWhenFree(name, paths);
  return { name, action: "unloaded", elapsedMs: r.elapsedMs, signalled: r.signalled };
}

/**
 * rmmod once the livepatch core has let go of the module: after a patch is disabled, the core
 * unregisters it and drops its module reference from a work item, so rmmod may briefly see
 * the module in use.
 */
async function removeModuleWhenFree(name: string, paths: KernelPaths): Promise<void> {
  requireRealKernel(paths, `unload ${name}`);
  for (let i = 0; i < 50 && isPatchRegistered(name, paths); i++) await sleep(100);
  for (let attempt = 0; ; attempt++) {
    try {
      await removeModule(name);
      return;
    } catch (e) {
      if (attempt >= 20 || !isModuleLoaded(name, paths)) throw e;
      await sleep(100);
    }
  }
}

/** The patch name for a name, a file name or the path of a .ko (whose modinfo names it). */
function patchNameOf(nameOrFile: string): string {
  if (nameOrFile.endsWith(".ko") && existsSync(nameOrFile)) {
    try {
      return readModuleFile(nameOrFile).info.name;
    } catch {
      // Not readable as a module: fall back to the file name.
    }
  }
  return moduleNameOf(nameOrFile);
}

/**
 * insmod and rmmod act on the running kernel whatever paths say: refuse them when the caller
 * looks at another tree (a unit test's fake sysfs), so a test can never load into this machine.
 */
function requireRealKernel(paths: KernelPaths, action: string): void {
  if (paths === KERNEL_PATHS) return;
  throw new KpatchError(
    "KPATCH_FAKE_KERNEL",
    `Cannot ${action}: the kernel paths are not the running kernel's`,
  );
}

function busyError(action: string, other: string): KpatchError {
  return new KpatchError(
    "KPATCH_BUSY",
    `Cannot ${action}: patch ${other} is in transition (the kernel runs one at a time); wait, or run 'kpatch signal'`,
  );
}
