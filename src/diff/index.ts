/**
 * The object differ: compare an object built before a source patch with the same object built
 * after it, and emit what a live patch needs, or refuse with a reason (a DiffError).
 *
 * The phases, in order (each a module of its own):
 *  1. indexObject          (in DiffContext) sections classified, functions and objects as units
 *  2. correlateSymbols     twins: original ↔ patched units, sections, section symbols
 *  3. readDirectives       the patch author's kpatch-macros.h directives (.kpatch_ts.* sections)
 *  4. markChangedFunctions same / changed (with why) / new, by bytes and relocation targets;
 *                          then markChangedEntries: an alternative's feature bit changed
 *                          ignored changes (KPATCH_IGNORE_*) stay same
 *  5. markChangedData      the same for data; users of changed read-only data change too
 *  6. applyDirectives      callbacks become new code; KPATCH_FORCE_UNSAFE overrides
 *  7. verifyChanges        refusals: data, __init, no fentry, unknown sections
 *  8. includeDependencies  what the new code needs that the running kernel lacks (IBT checks),
 *                          and copies of unchanged locals the target cannot tell apart;
 *                          verifyCopiedFunctions: no copied function's address taken;
 *                          verifyNewStatics: a new writable static that may split an original's state
 *     — the original object is dead after this phase —
 *  9. cloneIncluded        units and sections into the output, relocations mapped
 * 10. cloneSpecialSections entries of included code, table-driven (special/table.ts)
 * 11. cloneCallbacks       the callback sections, for the module generator
 * 12. makeReport
 */
import type { ElfFile } from "../elf/index.js";
import { applyDirectives } from "./apply-directives.js";
import { cloneCallbacks } from "./clone-callbacks.js";
import { cloneIncluded } from "./clone-included.js";
import { cloneSpecialSections } from "./clone-special-sections.js";
import { DiffContext, type DiffOptions } from "./context.js";
import { verifyCopiedFunctions } from "./copy-ambiguous-locals.js";
import { correlateSymbols } from "./correlate-symbols.js";
import { includeDependencies } from "./include-dependencies.js";
import { markChangedData } from "./mark-changed-data.js";
import { markChangedEntries } from "./mark-changed-entries.js";
import { markChangedFunctions } from "./mark-changed-functions.js";
import { OutputBuilder } from "./output-builder.js";
import { readDirectives } from "./read-directives.js";
import { type DiffReport, makeReport } from "./report.js";
import { verifyChanges, verifyNewStatics } from "./verify-changes.js";

export type { ChangeWhy, DiffOptions } from "./context.js";
export { type DiffErrorCode, isDiffError } from "./diff-error.js";
export { entrySizesFromEnv, parseEntrySizes } from "./entry-sizes.js";
export { ExportTable } from "./export-table.js";
export type {
  CallbackReport,
  ChangedFunction,
  DiffReport,
  IncludedData,
  KlpReference,
  NewFunction,
} from "./report.js";
export { formatReport } from "./report.js";
export { ENTRY_SIZE_KEYS, type EntrySizeKey, type EntrySizes } from "./special/special-kind.js";
export { TargetSymbols } from "./target-symbols.js";

export interface DiffResult {
  /** False when no function changed and nothing new needs patching (the CLI's exit 3). */
  changed: boolean;
  /** The object to link into the patch module (when changed). */
  output: ElfFile | undefined;
  report: DiffReport;
}

/** Compares `orig` with `patched`; throws a DiffError when the change cannot be applied live. */
export function diffObjects(orig: ElfFile, patched: ElfFile, options: DiffOptions = {}): DiffResult {
  const ctx = new DiffContext(orig, patched, options);
  correlateSymbols(ctx);
  readDirectives(ctx);
  markChangedFunctions(ctx);
  markChangedEntries(ctx);
  markChangedData(ctx);
  applyDirectives(ctx);
  verifyChanges(ctx);
  includeDependencies(ctx);
  verifyCopiedFunctions(ctx);
  verifyNewStatics(ctx);
  if (ctx.included.size === 0)
    return { changed: false, output: undefined, report: makeReport(ctx, undefined) };
  const builder = new OutputBuilder(ctx);
  cloneIncluded(ctx, builder);
  cloneSpecialSections(ctx, builder);
  cloneCallbacks(ctx, builder);
  return { changed: true, output: builder.out, report: makeReport(ctx, builder) };
}
