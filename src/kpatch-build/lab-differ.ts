/**
 * The differ as kpatch-build runs it against a lab kernel: the target's symbols come from the
 * running kernel's own build (vmlinux, or the module's .ko), exports from its Module.symvers,
 * and special-section entry sizes are measured from its headers. Loaded once per run.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { EntrySizes } from "../diff/index.js";
import { diffObjects, ExportTable, probeEntrySizes, TargetSymbols } from "../diff/index.js";
import { readElf } from "../elf/read-elf.js";
import { KpatchError } from "../util/errors.js";
import { moduleNameOf } from "../util/module-name.js";
import type { KernelTree } from "./kernel-tree.js";
import type { DiffStep } from "./kpatch-build.js";

interface TargetContext {
  exports: ExportTable;
  entrySizes: EntrySizes;
  symbols: Map<string, TargetSymbols>;
}

const contexts = new Map<string, TargetContext>();

async function contextFor(lab: KernelTree): Promise<TargetContext> {
  let ctx = contexts.get(lab.buildDir);
  if (!ctx) {
    const symvers = join(lab.buildDir, "Module.symvers");
    ctx = {
      exports: ExportTable.parse(readFileSync(symvers, "utf8"), symvers),
      entrySizes: await probeEntrySizes(lab.buildDir),
      symbols: new Map(),
    };
    contexts.set(lab.buildDir, ctx);
  }
  return ctx;
}

/** The running kernel's file that holds a target's symbols: vmlinux or the module's .ko. */
export function targetFile(lab: Pick<KernelTree, "buildDir" | "vmlinux">, target: string): string {
  if (target === "vmlinux") return lab.vmlinux;
  const order = join(lab.buildDir, "modules.order");
  const lines = existsSync(order) ? readFileSync(order, "utf8").split("\n") : [];
  const ko = lines.map((l) => l.trim().replace(/\.o$/, ".ko")).find((l) => l && moduleNameOf(l) === target);
  if (!ko)
    throw new KpatchError(
      "TARGET_NOT_FOUND",
      `Cannot find the module ${target} in ${lab.buildDir}/modules.order`,
    );
  return join(lab.buildDir, ko);
}

function symbolsFor(ctx: TargetContext, lab: KernelTree, target: string): TargetSymbols {
  let s = ctx.symbols.get(target);
  if (!s) {
    const file = targetFile(lab, target);
    s = TargetSymbols.load(readFileSync(file), file);
    ctx.symbols.set(target, s);
  }
  return s;
}

export const labDiffStep: DiffStep = async (pair, lab) => {
  const ctx = await contextFor(lab);
  const orig = readElf(readFileSync(pair.orig), pair.path);
  const patched = readElf(readFileSync(pair.patched), pair.path);
  const result = diffObjects(orig, patched, {
    target: pair.target,
    symbols: symbolsFor(ctx, lab, pair.target),
    exports: ctx.exports,
    entrySizes: ctx.entrySizes,
  });
  const funcs = result.report.changed.map((c) => ({
    name: c.name,
    oldName: c.originalName,
    sympos: c.sympos,
  }));
  return { ...(result.output ? { output: result.output } : {}), funcs, report: result.report };
};
