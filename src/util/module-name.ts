/**
 * Kernel module names, the one place that knows them. Kbuild names a module after its file,
 * with '-' turned into '_' (KBUILD_MODNAME), and the kernel keeps at most MODULE_NAME_LEN - 1
 * characters (64 - sizeof(unsigned long) - 1 = 55 on 64-bit). A live patch's name in
 * /sys/kernel/livepatch is its module's name. A name that reaches a path (sysfs, the state
 * directory) is checked here first: only letters, digits and '_' can name a module.
 */
import { KpatchError } from "./errors.js";
import { printable } from "./printable.js";

/** The longest module name the kernel keeps (MODULE_NAME_LEN - 1 on 64-bit). */
export const MODULE_NAME_MAX = 55;

const MODULE_NAME = /^[A-Za-z0-9_]+$/;

/** The kernel's spelling of a module name: '-' read as '_'. */
export function normalizeModuleName(name: string): string {
  return name.replace(/-/g, "_");
}

/**
 * The module name for a file or a name: the last path component without .ko (or a compressed
 * .ko.xz/.gz/.zst, or an object's .o), '-' read as '_'. Not checked: see isModuleName().
 */
export function moduleNameOf(fileOrName: string): string {
  const base = fileOrName.slice(fileOrName.lastIndexOf("/") + 1);
  return normalizeModuleName(base.replace(/\.(ko(\.(xz|gz|zst))?|o)$/, ""));
}

/** A name the kernel can give a module (after normalising '-'), hence safe in a path. */
export function isModuleName(name: string): boolean {
  return badModuleNameReason(name) === undefined;
}

/**
 * The normalised module name, or a KPATCH_BAD_NAME error that says what was wrong with it.
 * `what` names where the name came from ("the patch name", "x.ko's .modinfo name").
 */
export function checkModuleName(name: string, what: string): string {
  const why = badModuleNameReason(name);
  if (why) throw new KpatchError("KPATCH_BAD_NAME", `Cannot use ${what} '${printable(name)}': ${why}`);
  return normalizeModuleName(name);
}

/** Why `name` cannot name a module, or undefined when it can. */
export function badModuleNameReason(name: string): string | undefined {
  if (name.length === 0) return "a module name cannot be empty";
  if (name.length > MODULE_NAME_MAX)
    return `a module name has at most ${MODULE_NAME_MAX} characters, not ${name.length}`;
  if (!MODULE_NAME.test(normalizeModuleName(name)))
    return "a module name has only letters, digits, '_' and '-'";
  return undefined;
}
