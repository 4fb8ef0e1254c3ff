/**
 * The run-pre check at `kpatch load`, before insmod, against the running kernel:
 *
 * 1. every function the module replaces must be where the livepatch core will look for it, as
 *    klp_find_object_symbol() does: old_name at old_sympos in /proc/kallsyms (vmlinux's lines,
 *    or the target module's when it is loaded; a module not loaded yet is resolved by the kernel
 *    when it loads). A module built for another build of the same release (a renumbered .isra
 *    clone, a function gone, a sympos off by one) is refused with the function named.
 * 2. when the module carries a run-pre record (runpre-record.ts: what kpatch-build compiled as
 *    each replaced function's original, and each same-object helper the new code calls at a
 *    sympos: a wrong link-order pick of a clone whose code differs is refused), that code is compared with the running kernel's text,
 *    read through /proc/kcore at the kallsyms address, allowing only what the kernel rewrites
 *    (site-kinds.ts). A mismatch refuses the load with the run-pre exit status (4) and the report
 *    kpatch-build prints; --skip-run-pre loads anyway, saying so loudly. Where /proc/kcore cannot
 *    be read (not root, no CONFIG_PROC_KCORE, kallsyms addresses hidden) or the module has no
 *    record (built by an older kpatch-build, or not by kpatch-build), it says so and goes on.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ElfFile } from "../elf/index.js";
import { findPatchMetadata, type PatchMetadata } from "../kernel/patch-metadata.js";
import { KernelSymbols } from "../kernel-image/index.js";
import { KpatchError } from "../util/errors.js";
import { Kcore, KcoreError } from "./kcore.js";
import { checkRecorded, type RunPreReport } from "./run-pre-check.js";
import { formatRunPre, formatRunPreSummary, paddingLines } from "./run-pre-format.js";
import {
  decodeRunPreRecord,
  type RecordedFunction,
  RUNPRE_SECTION,
  RunPreRecordError,
} from "./runpre-record.js";
import { addressedCode, type TargetCode } from "./target-code.js";

export interface LiveCheck {
  /** Functions found where the livepatch core will look. */
  checked: number;
  /** Functions that are not: each names the function and what kallsyms has. */
  problems: string[];
  /** What could not be checked, and why. */
  notes: string[];
}

/** /proc/kallsyms parsed once per load: each object's symbols, "vmlinux" for the kernel's own. */
export type LiveKallsyms = ReadonlyMap<string, KernelSymbols>;

export function checkAgainstKallsyms(meta: PatchMetadata, kallsyms: LiveKallsyms): LiveCheck {
  const result: LiveCheck = { checked: 0, problems: [], notes: [] };
  for (const obj of meta.objects) {
    const symbols = kallsyms.get(obj.name);
    if (!symbols) {
      result.notes.push(`${obj.name} is not loaded: the kernel resolves its functions when it loads`);
      continue;
    }
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

/** What kpatch load's check did, for its output and --json. */
export interface LoadCheck {
  /** Functions found where the livepatch core will look. */
  located: number;
  /** The code comparison, when it ran. */
  code?: RunPreReport;
  /** The run-pre record's size in the module, when it has one. */
  recordBytes?: number;
  /** A mismatch loaded anyway (--skip-run-pre). */
  overridden?: boolean;
  notes: string[];
}

/** A code mismatch at kpatch load: exit 4, with the report. */
export class RunPreLoadError extends KpatchError {
  readonly report: RunPreReport;

  constructor(name: string, report: RunPreReport) {
    super(
      "KPATCH_RUNPRE_MISMATCH",
      `Cannot load ${name}: the original code it was built against is not the running kernel's (nothing loaded; --skip-run-pre loads anyway):\n${formatRunPre(report)}`,
      { file: name },
    );
    this.report = report;
  }
}

export interface VerifyOptions {
  log?: (line: string) => void;
  /** Load although the code does not match (the expert override), saying so. */
  skipRunPre?: boolean;
}

/**
 * kpatch load's check: throws KPATCH_RUNPRE_MISMATCH naming every function the livepatch core
 * would not find, or (RunPreLoadError) the first differing instruction of each function whose
 * recorded original is not the running kernel's code; says what it could not check, and goes on.
 */
export function verifyBeforeLoad(elf: ElfFile, procDir: string, options: VerifyOptions = {}): LoadCheck {
  const name = elf.path ?? "the module";
  const notes: string[] = [];
  const note = (line: string) => {
    notes.push(line);
    options.log?.(`${name}: ${line}`);
  };
  const result: LoadCheck = { located: 0, notes };
  const meta = findPatchMetadata(elf);
  if (!meta) {
    note("run-pre check skipped: its klp_patch could not be read");
    return result;
  }
  let kallsyms: LiveKallsyms;
  try {
    kallsyms = KernelSymbols.fromProcKallsymsByObject(readFileSync(join(procDir, "kallsyms"), "utf8"));
  } catch (e) {
    note(`run-pre check skipped: cannot read ${procDir}/kallsyms (${(e as Error).message})`);
    return result;
  }
  const r = checkAgainstKallsyms(meta, kallsyms);
  result.located = r.checked;
  for (const n of r.notes) note(n);
  if (r.problems.length) {
    throw new KpatchError(
      "KPATCH_RUNPRE_MISMATCH",
      `Cannot load ${name}: it was not built for this kernel's code; the livepatch core would not find:\n${r.problems.map((p) => `  ${p}`).join("\n")}`,
      { file: name },
    );
  }
  const recorded = readRecord(elf, name);
  if (!recorded) {
    note("no run-pre record: code not compared (built by another tool or an older kpatch-build)");
    return result;
  }
  result.recordBytes = recorded.bytes;
  const report = compareLive(recorded.functions, kallsyms, procDir, note);
  if (!report) return result;
  labelCalledHelpers(report, meta);
  result.code = report;
  note(`run-pre check: ${formatRunPreSummary(report)} (${report.ms.toFixed(1)} ms)`);
  for (const line of paddingLines(report)) note(line);
  if (report.mismatched) {
    if (!options.skipRunPre) throw new RunPreLoadError(name, report);
    result.overridden = true;
    note(
      `WARNING: --skip-run-pre: loading although the code it replaces is not what it was built against; the patch may crash this kernel:\n${formatRunPre(report)}`,
    );
  }
  return result;
}

/**
 * The record also holds helpers the new code calls at a sympos (link-order picks of same-named
 * locals): a function the klp_patch does not replace is reported as called, not replaced.
 */
export function labelCalledHelpers(report: RunPreReport, meta: PatchMetadata): void {
  const replaced = new Set(
    meta.objects.flatMap((o) => o.functions.map((f) => `${o.name}:${f.name},${f.sympos}`)),
  );
  for (const f of report.functions)
    if (!replaced.has(`${f.object}:${f.function},${f.sympos}`)) f.role = "called";
}

function readRecord(
  elf: ElfFile,
  name: string,
): { functions: RecordedFunction[]; bytes: number } | undefined {
  const sec = elf.sections.find((s) => s.name === RUNPRE_SECTION);
  if (!sec) return undefined;
  try {
    return { functions: decodeRunPreRecord(sec.data, name), bytes: sec.data.length };
  } catch (e) {
    if (!(e instanceof RunPreRecordError)) throw e;
    throw new KpatchError(
      "KPATCH_RUNPRE_RECORD",
      `Cannot load ${name}: its ${RUNPRE_SECTION} section is unreadable: ${e.message}`,
      {
        file: name,
        section: RUNPRE_SECTION,
      },
    );
  }
}

/** The recorded functions against /proc/kcore; undefined (with a note saying why) when it cannot be read. */
export function compareLive(
  functions: readonly RecordedFunction[],
  kallsyms: LiveKallsyms,
  procDir: string,
  note: (line: string) => void,
): RunPreReport | undefined {
  const path = join(procDir, "kcore");
  if (!kallsyms.get("vmlinux")?.symbols.some((s) => s.address !== 0n)) {
    note(`kallsyms addresses are hidden (kptr_restrict): code not compared, kallsyms check only`);
    return undefined;
  }
  let kcore: Kcore;
  try {
    kcore = Kcore.open(path);
  } catch (e) {
    if (!(e instanceof KcoreError)) throw e;
    note(`cannot read ${path} (${e.message}): code not compared, kallsyms check only`);
    return undefined;
  }
  try {
    const opened = new Map<string, TargetCode | undefined>();
    const codeFor = (target: string): TargetCode | undefined => {
      if (!opened.has(target)) {
        const symbols = kallsyms.get(target);
        opened.set(
          target,
          symbols
            ? addressedCode({ path, symbols: () => symbols, bytesAt: (a, n) => kcore.bytesAt(a, n) })
            : undefined,
        );
      }
      return opened.get(target);
    };
    return checkRecorded(functions, codeFor, "live");
  } finally {
    kcore.close();
  }
}
