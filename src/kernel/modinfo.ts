/**
 * What a kernel module says about itself: the NUL-separated `key=value` strings of its .modinfo
 * section (vermagic, livepatch, license, depends, name, ...), read from the .ko without loading
 * it, the way modinfo(8) does.
 */
import { type ElfFile, readElf } from "../elf/index.js";
import { isKpatchError, KpatchError } from "../util/errors.js";
import { badModuleNameReason, moduleNameOf, normalizeModuleName } from "../util/module-name.js";
import { readUserFile } from "../util/user-file.js";

export interface ModuleInfo {
  /** The .ko it was read from. */
  path: string;
  /** The module's name as the kernel knows it (modinfo `name`, else the file name with _ for -). */
  name: string;
  /** The whole vermagic string: release first, then flags ("6.12.57 SMP preempt mod_unload ..."). */
  vermagic: string | undefined;
  /** MODULE_INFO(livepatch, "Y"): the module registers a live patch. */
  livepatch: boolean;
  license: string | undefined;
  description: string | undefined;
  srcversion: string | undefined;
  depends: string[];
  /** Every key with all its values, in file order. */
  fields: [string, string][];
}

/** The key=value pairs of a .modinfo section's bytes, in order; empty strings are padding. */
export function parseModinfo(data: Uint8Array): [string, string][] {
  const out: [string, string][] = [];
  const text = new TextDecoder("utf-8", { fatal: false }).decode(data);
  for (const entry of text.split("\0")) {
    if (!entry) continue;
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    out.push([entry.slice(0, eq), entry.slice(eq + 1)]);
  }
  return out;
}

/** The module information of an already-read object. */
function moduleInfoOf(elf: ElfFile, path: string): ModuleInfo {
  const sec = elf.findSection(".modinfo");
  if (!sec) {
    throw new KpatchError("KPATCH_NOT_MODULE", "Cannot read the module information: no .modinfo section", {
      file: path,
    });
  }
  const fields = parseModinfo(sec.data);
  const first = (key: string) => fields.find(([k]) => k === key)?.[1];
  const depends = (first("depends") ?? "").split(",").filter(Boolean);
  const name = first("name") ?? moduleNameOf(path);
  const bad = badModuleNameReason(name);
  if (bad) {
    // The name reaches sysfs and state-directory paths: '../x' must not.
    throw new KpatchError(
      "KPATCH_BAD_NAME",
      `Cannot use ${path}: its module name '${JSON.stringify(name).slice(1, -1)}' is not one the kernel allows (${bad})`,
      { file: path },
    );
  }
  return {
    path,
    name: normalizeModuleName(name),
    vermagic: first("vermagic"),
    livepatch: first("livepatch") === "Y",
    license: first("license"),
    description: first("description"),
    srcversion: first("srcversion"),
    depends,
    fields,
  };
}

/**
 * Reads a .ko from disk: its ELF model and its module information (and the bytes they were
 * read from, for a caller that keeps a copy). Only a regular file is read (a FIFO would hang).
 */
export function readModuleFile(path: string): { elf: ElfFile; info: ModuleInfo; bytes: Uint8Array } {
  const bytes = readUserFile(path, "KPATCH_NO_FILE");
  let elf: ElfFile;
  try {
    elf = readElf(bytes, path);
  } catch (e) {
    if (!isKpatchError(e)) throw e;
    throw new KpatchError(
      "KPATCH_NOT_MODULE",
      `Cannot use ${path}: not a kernel module (${e.message})`,
      { file: path },
      { cause: e },
    );
  }
  return { elf, info: moduleInfoOf(elf, path), bytes };
}

/** The kernel release a vermagic string names (its first word). */
export function vermagicRelease(vermagic: string): string {
  return vermagic.trim().split(/\s+/)[0] ?? "";
}
