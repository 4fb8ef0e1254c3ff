/**
 * What a kbuild output tree (O=) says about itself: the objects it compiled, the sources and
 * headers each object depends on (from kbuild's .<name>.o.cmd files), and which target each
 * object belongs to (vmlinux, or the module whose .mod file lists it).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { KpatchError } from "../util/errors.js";
import { escapeRegExp } from "../util/escape-regexp.js";
import { moduleNameOf } from "../util/module-name.js";

export interface KbuildObject {
  /** Object path relative to the tree, e.g. "fs/proc/cmdline.o". */
  path: string;
  /** Absolute path of the source it is compiled from. */
  source: string;
  /** "vmlinux" or a module name (with underscores, as the kernel names it). */
  target: string;
}

/**
 * Kernel objects (compiled with -D__KERNEL__) with their sources, their .cmd text for dep checks
 * and the dependencies it records (as written).
 */
export function kernelObjects(tree: string): { obj: KbuildObject; cmd: string; deps: string[] }[] {
  const modOf = moduleMembership(tree);
  const out: { obj: KbuildObject; cmd: string; deps: string[] }[] = [];
  const walk = (dir: string): void => {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      if (ent.isDirectory()) {
        if (ent.name !== "source" && ent.name !== ".tmp_versions") walk(join(dir, ent.name));
        continue;
      }
      const m = /^\.(.+\.o)\.cmd$/.exec(ent.name);
      if (!m) continue;
      const cmd = readFileSync(join(dir, ent.name), "utf8");
      // kbuild's own name (arch/x86/kvm/../../../virt/kvm/kvm_main.o), which its .mod files use.
      const path = recordedObjectName(cmd) ?? relative(tree, join(dir, m[1]!));
      const record = parseKbuildCmd(cmd, path);
      if (!record.source || !/\.[cS]$/.test(record.source) || !record.command?.includes("-D__KERNEL__"))
        continue;
      // An O= build records the source by absolute path, an in-tree build relative to the tree.
      const source = resolve(tree, record.source);
      out.push({ obj: { path, source, target: modOf.get(path) ?? "vmlinux" }, cmd, deps: record.deps });
    }
  };
  walk(tree);
  return out.sort((a, b) => a.obj.path.localeCompare(b.obj.path));
}

/** Object path → module name, from the tree's <module>.mod files. */
function moduleMembership(tree: string): Map<string, string> {
  const map = new Map<string, string>();
  const order = join(tree, "modules.order");
  if (!existsSync(order)) return map;
  for (const line of readFileSync(order, "utf8").split("\n")) {
    const ko = line.trim();
    if (!ko) continue;
    const mod = join(tree, ko.replace(/\.o$|\.ko$/, ".mod"));
    const name = moduleNameOf(ko);
    if (!existsSync(mod)) continue;
    for (const o of readFileSync(mod, "utf8").split(/\s+/)) {
      if (o) map.set(o.startsWith("/") ? relative(tree, o) : o, name);
    }
  }
  return map;
}

/** Objects whose source or recorded dependencies include any of the given absolute paths. */
export function objectsDependingOn(
  objects: readonly { obj: KbuildObject; cmd: string }[],
  files: readonly string[],
  tree: string,
): KbuildObject[] {
  return objects
    .filter(({ obj, cmd }) =>
      files.some(
        (f) =>
          obj.source === f ||
          cmd.includes(`${f} `) ||
          cmd.includes(`${f}\n`) ||
          cmd.includes(`${relative(tree, f)} `),
      ),
    )
    .map(({ obj }) => obj);
}

/**
 * The object a .<name>.o.cmd record is of, as kbuild names it: an object listed from a parent
 * directory's Makefile keeps its ../ steps (the name `make` and the .mod files know).
 */
export function recordedObjectName(text: string): string | undefined {
  return /^(?:savedcmd|cmd)_(\S+\.o) := /m.exec(text)?.[1];
}

export function cmdFile(tree: string, obj: string): string {
  return join(tree, dirname(obj), `.${basename(obj)}.cmd`);
}

/** What kbuild's .<name>.o.cmd record of `obj` says: the command that built it and from what. */
export interface KbuildCmd {
  /** `savedcmd_<obj> := ...` (since 6.3), `cmd_<obj> := ...` before (6.1). */
  command: string | undefined;
  /** `source_<obj> := ...`: absolute in an O= build, else relative to the tree. */
  source: string | undefined;
  /**
   * `deps_<obj> := ...`: the files kbuild recorded it as depending on (its source, every
   * header, the include/config/ stamps of the options it uses), as written (absolute or
   * relative to the tree).
   */
  deps: string[];
}

function recordedDeps(text: string, obj: string): string[] {
  const lines = text.split("\n");
  const start = lines.indexOf(`deps_${obj} := \\`);
  if (start < 0) return [];
  const deps: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const entry = line.trim().replace(/\s*\\$/, "");
    if (entry) deps.push(entry.replace(/^\$\(wildcard (.*)\)$/, "$1"));
    if (!line.endsWith("\\")) break;
  }
  return deps;
}

export function parseKbuildCmd(text: string, obj: string): KbuildCmd {
  const o = escapeRegExp(obj);
  return {
    command: new RegExp(`^(?:savedcmd|cmd)_${o} := (.*)$`, "m").exec(text)?.[1],
    source: new RegExp(`^source_${o} := (\\S+)$`, "m").exec(text)?.[1],
    deps: recordedDeps(text, obj),
  };
}

/** The record of `obj` in the tree; BUILD_NO_COMMAND when there is none or it has no command. */
export function readKbuildCmd(tree: string, obj: string): KbuildCmd & { command: string } {
  const file = cmdFile(tree, obj);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new KpatchError("BUILD_NO_COMMAND", `Cannot find how ${obj} was built: no ${file}`, { file: obj });
  }
  const record = parseKbuildCmd(text, obj);
  if (record.command === undefined)
    throw new KpatchError("BUILD_NO_COMMAND", `Cannot read the build command of ${obj} in ${file}`, {
      file: obj,
    });
  return { ...record, command: record.command };
}
