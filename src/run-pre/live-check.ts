/**
 * The run-pre check at `kpatch load`, before insmod, against the running kernel: every function
 * the module replaces must be where the livepatch core will look for it, as
 * klp_find_object_symbol() does: old_name at old_sympos in /proc/kallsyms (vmlinux's lines, or the
 * target module's when it is loaded; a module not loaded yet is resolved by the kernel when it
 * loads). A module built for another build of the same release (a renumbered .isra clone, a
 * function gone, a sympos off by one) is refused here with the function named, instead of failing
 * inside the kernel.
 *
 * What is not compared: the functions' code. The module carries its new functions, not the
 * original ones, so there is nothing to hold /proc/kcore's bytes against; kpatch-build's run-pre
 * check compares the code when the module is built.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ElfFile } from "../elf/index.js";
import { findPatchMetadata, type PatchMetadata } from "../kernel/patch-metadata.js";
import { KernelSymbols } from "../kernel-image/index.js";
import { KpatchError } from "../util/errors.js";

export interface LiveCheck {
  /** Functions found where the livepatch core will look. */
  checked: number;
  /** Functions that are not: each names the function and what kallsyms has. */
  problems: string[];
  /** What could not be checked, and why. */
  notes: string[];
}

/** The `[module]` names /proc/kallsyms lists. */
function loadedModules(kallsyms: string): Set<string> {
  const out = new Set<string>();
  for (const m of kallsyms.matchAll(/\t\[(\S+)\]$/gm)) out.add(m[1]!);
  return out;
}

export function checkAgainstKallsyms(meta: PatchMetadata, kallsyms: string): LiveCheck {
  const result: LiveCheck = { checked: 0, problems: [], notes: [] };
  const modules = loadedModules(kallsyms);
  for (const obj of meta.objects) {
    const target = obj.name === "vmlinux" ? undefined : obj.name;
    if (target && !modules.has(target)) {
      result.notes.push(`${target} is not loaded: the kernel resolves its functions when it loads`);
      continue;
    }
    const symbols = KernelSymbols.fromProcKallsyms(kallsyms, target ? { module: target } : {});
    for (const f of obj.functions) {
      const where = `${obj.name}: ${f.name}${f.sympos ? `,${f.sympos}` : ""}`;
      const same = symbols.named(f.name).length;
      if (symbols.find(f.name, f.sympos)) result.checked++;
      else if (same === 0) result.problems.push(`${where}: the running kernel has no ${f.name}`);
      else if (f.sympos === 0) {
        result.problems.push(
          `${where}: the running kernel has ${same} functions of that name (sympos 0 needs one)`,
        );
      } else {
        const n = `${same} ${same === 1 ? "function" : "functions"}`;
        result.problems.push(`${where}: the running kernel has only ${n} of that name`);
      }
    }
  }
  return result;
}

/**
 * kpatch load's check: throws KPATCH_RUNPRE_MISMATCH naming every function the livepatch core
 * would not find; says (through `log`) what it could not check, and goes on.
 */
export function verifyBeforeLoad(
  elf: ElfFile,
  procDir: string,
  log: (line: string) => void = () => {},
): void {
  const name = elf.path ?? "the module";
  const meta = findPatchMetadata(elf);
  if (!meta) {
    log(`${name}: run-pre check skipped: its klp_patch could not be read`);
    return;
  }
  let kallsyms: string;
  try {
    kallsyms = readFileSync(join(procDir, "kallsyms"), "utf8");
  } catch (e) {
    log(`${name}: run-pre check skipped: cannot read ${procDir}/kallsyms (${(e as Error).message})`);
    return;
  }
  const r = checkAgainstKallsyms(meta, kallsyms);
  for (const n of r.notes) log(`${name}: ${n}`);
  if (r.problems.length) {
    throw new KpatchError(
      "KPATCH_RUNPRE_MISMATCH",
      `Cannot load ${name}: it was not built for this kernel's code; the livepatch core would not find:\n${r.problems.map((p) => `  ${p}`).join("\n")}`,
      { file: name },
    );
  }
}
