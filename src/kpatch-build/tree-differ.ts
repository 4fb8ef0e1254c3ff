/**
 * The differ as kpatch-build runs it against a kernel tree (the lab's or a user's): the
 * target's symbols come from the running kernel's own build (vmlinux, or the module's .ko),
 * exports from its Module.symvers, and special-section entry sizes are measured from its
 * headers. One TreeDiffer per kpatch-build run; each of those is loaded once, when first needed.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { findInModulesOrder } from "../debian/image-modules.js";
import { type DiffReport, diffObjects, type EntrySizes, ExportTable, TargetSymbols } from "../diff/index.js";
import type { ElfFile } from "../elf/elf-file.js";
import { readElf } from "../elf/read-elf.js";
import { isElfFile, KernelImage } from "../kernel-image/index.js";
import { KpatchError } from "../util/errors.js";
import { probeEntrySizes } from "./entry-size-probe.js";
import type { KernelTree } from "./kernel-tree.js";
import type { ObjectPair } from "./patched-objects.js";

export interface DiffVerdict {
  /** undefined when the object's changes need nothing live-patched (e.g. only debug info). */
  output?: ElfFile;
  /** Changed functions: name in the output, name and sympos of the original in the target. */
  funcs: { name: string; oldName: string; sympos: number }[];
  report: DiffReport;
}

/** The running kernel's file that holds a target's symbols: vmlinux or the module's .ko. */
export function targetFile(tree: Pick<KernelTree, "buildDir" | "vmlinux">, target: string): string {
  if (target === "vmlinux") return tree.vmlinux;
  const order = join(tree.buildDir, "modules.order");
  const listed = existsSync(order) ? findInModulesOrder(readFileSync(order, "utf8"), target) : undefined;
  if (!listed)
    throw new KpatchError(
      "TARGET_NOT_FOUND",
      `Cannot find the module ${target} in ${tree.buildDir}/modules.order`,
    );
  return join(tree.buildDir, listed.replace(/\.o$/, ".ko"));
}

export class TreeDiffer {
  #exports: ExportTable | undefined;
  #entrySizes: EntrySizes | undefined;
  readonly #symbols = new Map<string, TargetSymbols>();

  constructor(readonly tree: KernelTree) {}

  /** Diffs one changed object against the tree's kernel; DiffErrors pass through. */
  async diff(pair: ObjectPair): Promise<DiffVerdict> {
    const orig = readElf(readFileSync(pair.orig), pair.path);
    const patched = readElf(readFileSync(pair.patched), pair.path);
    const result = diffObjects(orig, patched, {
      target: pair.target,
      symbols: await this.#symbolsOf(pair.target),
      exports: this.#exportTable(),
      entrySizes: await this.#sizes(),
    });
    const funcs = result.report.changed.map((c) => ({
      name: c.name,
      oldName: c.originalName,
      sympos: c.sympos,
    }));
    return { ...(result.output ? { output: result.output } : {}), funcs, report: result.report };
  }

  #exportTable(): ExportTable {
    if (!this.#exports) {
      const symvers = join(this.tree.buildDir, "Module.symvers");
      this.#exports = ExportTable.parse(readFileSync(symvers, "utf8"), symvers);
    }
    return this.#exports;
  }

  async #sizes(): Promise<EntrySizes> {
    this.#entrySizes ??= await probeEntrySizes(
      this.tree.buildDir,
      this.tree.run ? { run: this.tree.run } : {},
    );
    return this.#entrySizes;
  }

  async #symbolsOf(target: string): Promise<TargetSymbols> {
    let s = this.#symbols.get(target);
    if (!s) {
      const { moduleFile } = this.tree;
      const file =
        target !== "vmlinux" && moduleFile ? await moduleFile(target) : targetFile(this.tree, target);
      // vmlinux through KernelImage (its symbol table, or the kallsyms of one extracted from a
      // vmlinuz): the run-pre check reads the same one, parsed once.
      s =
        target === "vmlinux" && isElfFile(file)
          ? TargetSymbols.fromImage(KernelImage.fromVmlinux(file))
          : TargetSymbols.load(readFileSync(file), file);
      this.#symbols.set(target, s);
    }
    return s;
  }
}
