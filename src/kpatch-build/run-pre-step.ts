/**
 * kpatch-build's run-pre step: after the diff and before the module is generated, the original
 * build of every function the patch replaces (and of what it takes along: .cold parts, carried
 * functions, functions of the same object the new code calls) is compared with the target
 * kernel's code (src/run-pre). A mismatch refuses the build (RUNPRE_MISMATCH) unless the expert
 * override is given, which prints the report as a loud warning instead.
 */
import { readFileSync } from "node:fs";
import type { DiffReport } from "../diff/report.js";
import { readElf } from "../elf/index.js";
import { KernelImage } from "../kernel-image/index.js";
import { functionCode } from "../run-pre/function-code.js";
import {
  assertRunPre,
  type CheckItem,
  findFunction,
  objectItems,
  type RunPreObject,
  type RunPreReport,
  runPreCheck,
} from "../run-pre/run-pre-check.js";
import { formatRunPre, formatRunPreSummary, paddingLines } from "../run-pre/run-pre-format.js";
import { encodeRunPreRecord, type RecordedFunction } from "../run-pre/runpre-record.js";
import { imageCode, moduleCode, type TargetCode } from "../run-pre/target-code.js";
import type { Progress } from "../util/progress.js";
import type { KernelTree } from "./kernel-tree.js";
import { targetFile } from "./tree-differ.js";

/** The target kernel's code for each target of a kernel tree, opened once per run. */
function targetCodeFor(kernel: KernelTree): (target: string) => Promise<TargetCode> {
  const opened = new Map<string, Promise<TargetCode>>();
  return (target) => {
    let code = opened.get(target);
    if (!code) {
      code =
        target === "vmlinux"
          ? KernelImage.open(kernel.image ?? kernel.vmlinux).then(imageCode)
          : (kernel.moduleFile
              ? kernel.moduleFile(target)
              : Promise.resolve(targetFile(kernel, target))
            ).then(moduleCode);
      opened.set(target, code);
    }
    return code;
  };
}

/** What to check of one diffed object, from the differ's report. */
function itemsFromDiff(report: DiffReport): CheckItem[] {
  const items: CheckItem[] = [];
  for (const c of report.changed) {
    items.push({ name: c.originalName, targetName: c.originalName, sympos: c.sympos, role: "replaced" });
    for (const part of c.children) items.push({ name: part, role: "part" });
  }
  for (const c of report.carried) items.push({ name: c.name, role: "carried" });
  for (const k of report.klp)
    items.push({ name: k.name, targetName: k.name, sympos: k.sympos, role: "called" });
  return items;
}

export interface DiffedObject {
  path: string;
  target: string;
  /** The original object file. */
  orig: string;
  /** The differ's report (a DiffReport), or undefined to check every function of the object. */
  report?: unknown;
}

function isDiffReport(r: unknown): r is DiffReport {
  return typeof r === "object" && r !== null && Array.isArray((r as DiffReport).changed);
}

export async function runPreStep(
  kernel: KernelTree,
  diffed: readonly DiffedObject[],
  progress: Progress,
  options: { override?: boolean; codeFor?: (target: string) => Promise<TargetCode> } = {},
): Promise<RunPreReport> {
  progress.begin("run-pre check", `${diffed.length} objects against ${kernel.image ?? kernel.vmlinux}`);
  const objects: RunPreObject[] = diffed.map((d) => {
    const orig = readElf(readFileSync(d.orig), d.path);
    return {
      path: d.path,
      target: d.target,
      orig,
      items: isDiffReport(d.report) ? itemsFromDiff(d.report) : objectItems(orig),
    };
  });
  const report = await runPreCheck(objects, {
    codeFor: options.codeFor ?? targetCodeFor(kernel),
    weakOverrideIsOk: diffed.every((d) => d.report === undefined),
  });
  progress.end(formatRunPreSummary(report));
  for (const line of paddingLines(report)) progress.note(line);
  if (report.mismatched && options.override) {
    progress.note(
      `WARNING: --skip-run-pre: building although the original build does not match the target kernel; the module may crash it:\n${formatRunPre(report)}`,
    );
    return report;
  }
  assertRunPre(report);
  return report;
}

/**
 * The module's run-pre record (src/run-pre/runpre-record.ts): the original build of every
 * function the patch replaces, for kpatch load to compare with the running kernel's text; and of
 * every function of the same object the new code calls at a sympos (one of several same-named
 * locals, told apart by link order: a static inline's out-of-line copy, a .constprop clone), so
 * the running kernel's copy at that position is checked too, not only the image's.
 */
export function runPreRecord(diffed: readonly DiffedObject[]): { data: Uint8Array; functions: number } {
  const functions: RecordedFunction[] = [];
  for (const d of diffed) {
    if (!isDiffReport(d.report)) continue;
    const orig = readElf(readFileSync(d.orig), d.path);
    for (const item of itemsFromDiff(d.report)) {
      if (item.role !== "replaced" && !(item.role === "called" && item.sympos)) continue;
      const sym = findFunction(orig, item.name);
      if (!sym) continue;
      const name = item.targetName ?? item.name;
      const code = functionCode(orig, sym);
      // A weak helper's calls reach the kernel's definition, not this code (run-pre: overridden).
      if (item.role === "called" && code.weak) continue;
      functions.push({ object: d.target, name, sympos: item.sympos ?? 0, code });
    }
  }
  return { data: encodeRunPreRecord(functions), functions: functions.length };
}
