/**
 * The run-pre check: before a module is generated, every function the patch replaces (and every
 * function it takes along or calls in the same object) is compared, in its original build, with
 * the same function in the target kernel's code. A live patch is only as right as its "before"
 * build: a source, config or compiler that does not reproduce the running kernel gives new code
 * compiled against another kernel. A mismatch is RUNPRE_MISMATCH (kpatch-build exit 4), with a
 * report naming the object, the function, the first differing instruction on both sides and the
 * likely causes.
 */
import type { ElfFile, ElfSymbol } from "../elf/index.js";
import { STT_FUNC } from "../elf/index.js";
import { KpatchError } from "../util/errors.js";
import { compareCode, type Mismatch, type PaddingOnly } from "./compare-code.js";
import { type FunctionCode, functionCode } from "./function-code.js";
import type { RecordedFunction } from "./runpre-record.js";
import type { AllowedDifference, CompareMode } from "./site-forms.js";
import type { TargetCode, TargetFunction } from "./target-code.js";

/** Why a function is checked: replaced by the patch, a split-off part of one (.cold), a changed
 * function carried along, a function of the same object the new code calls, or (check-only over
 * source files) any function of the object. */
export type FunctionRole = "replaced" | "part" | "carried" | "called" | "object";

export interface CheckItem {
  /** The function's name in the original object. */
  name: string;
  /** Its name and sympos in the target; undefined sympos: resolve by name (must be unique). */
  targetName?: string;
  sympos?: number;
  role: FunctionRole;
}

export interface RunPreObject {
  /** The object's path in the kernel tree (fs/proc/cmdline.o). */
  path: string;
  /** vmlinux or a module name. */
  target: string;
  orig: ElfFile;
  items: CheckItem[];
}

export type FunctionStatus = "matched" | "allowed" | "mismatch" | "overridden";

export interface FunctionResult {
  object: string;
  target: string;
  function: string;
  sympos: number;
  role: FunctionRole;
  status: FunctionStatus;
  /** The address in the target (hex), when found. */
  address?: string;
  size: number;
  allowed: AllowedDifference[];
  mismatch?: Mismatch;
  /** Matched only modulo alignment NOPs (gcc's loop/jump padding at another offset). */
  padding?: PaddingOnly;
}

export interface RunPreReport {
  /** Where each target's code was read (target -> path). */
  sources: Record<string, string>;
  functions: FunctionResult[];
  matched: number;
  allowed: number;
  mismatched: number;
  overridden: number;
  ms: number;
}

export interface RunPreOptions {
  /** The target kernel's code for a target (vmlinux or a module). */
  codeFor: (target: string) => TargetCode | Promise<TargetCode>;
  /**
   * For check-only over whole objects: a weak function the kernel has another definition of is
   * "overridden" rather than a mismatch (a patch replacing it would be refused).
   */
  weakOverrideIsOk?: boolean;
  /** What the target's code is: a kernel image file (default) or the running kernel's text. */
  mode?: CompareMode;
}

export function findFunction(orig: ElfFile, name: string): ElfSymbol | undefined {
  return orig.findSymbols(name).find((s) => s.type === STT_FUNC && s.section && s.size > 0n);
}

function emptyReport(): RunPreReport {
  return { sources: {}, functions: [], matched: 0, allowed: 0, mismatched: 0, overridden: 0, ms: 0 };
}

function count(report: RunPreReport, result: FunctionResult): void {
  report.functions.push(result);
  if (result.status === "matched") report.matched++;
  else if (result.status === "allowed") report.allowed++;
  else if (result.status === "overridden") report.overridden++;
  else report.mismatched++;
}

export async function runPreCheck(
  objects: readonly RunPreObject[],
  options: RunPreOptions,
): Promise<RunPreReport> {
  const started = performance.now();
  const report = emptyReport();
  for (const o of objects) {
    const code = await options.codeFor(o.target);
    report.sources[o.target] = code.source;
    const seen = new Set<string>();
    for (const item of o.items) {
      const sym = findFunction(o.orig, item.name);
      if (!sym || seen.has(item.name)) continue;
      seen.add(item.name);
      count(report, checkFunction(o.path, o.target, item, functionCode(o.orig, sym), code, options));
    }
  }
  report.ms = performance.now() - started;
  return report;
}

/**
 * The functions a module's run-pre record holds (runpre-record.ts) against a target's code;
 * `codeFor` returns undefined for a target that cannot be read (a module not loaded).
 */
export function checkRecorded(
  functions: readonly RecordedFunction[],
  codeFor: (target: string) => TargetCode | undefined,
  mode: CompareMode,
): RunPreReport {
  const started = performance.now();
  const report = emptyReport();
  for (const f of functions) {
    const code = codeFor(f.object);
    if (!code) continue;
    report.sources[f.object] = code.source;
    const item: CheckItem = { name: f.name, targetName: f.name, sympos: f.sympos, role: "replaced" };
    count(report, checkFunction(f.object, f.object, item, f.code, code, { mode }));
  }
  report.ms = performance.now() - started;
  return report;
}

function checkFunction(
  path: string,
  target: string,
  item: CheckItem,
  ours: FunctionCode,
  code: TargetCode,
  options: Pick<RunPreOptions, "weakOverrideIsOk" | "mode">,
): FunctionResult {
  const name = item.targetName ?? item.name;
  const base = {
    object: path,
    target,
    function: name,
    sympos: 0,
    role: item.role,
    size: ours.bytes.length,
  };
  const mode = options.mode ?? "image";
  const { theirs, at } = locate(code, ours, name, item.sympos, mode);
  base.sympos = at;
  if (typeof theirs === "string") {
    const mismatch = { offset: 0, ours: `${ours.bytes.length} bytes`, theirs: "(not found)", reason: theirs };
    return { ...base, status: "mismatch", allowed: [], mismatch };
  }
  const address = `0x${theirs.address.toString(16)}`;
  const cmp = compareCode(ours, theirs, mode);
  if (!cmp.mismatch) {
    const status = cmp.allowed.length ? "allowed" : "matched";
    return {
      ...base,
      address,
      status,
      allowed: cmp.allowed,
      ...(cmp.padding ? { padding: cmp.padding } : {}),
    };
  }
  if (ours.weak) {
    cmp.mismatch.reason = `${cmp.mismatch.reason}; ${name} is a weak definition here: the kernel runs another one`;
    // Calls reach the kernel's definition, as the kernel's own callers do: not our code to match.
    if (options.weakOverrideIsOk || item.role === "called") {
      return { ...base, address, status: "overridden", allowed: cmp.allowed, mismatch: cmp.mismatch };
    }
  }
  return { ...base, address, status: "mismatch", allowed: cmp.allowed, mismatch: cmp.mismatch };
}

/**
 * The target's function for ours: at the differ's sympos; without one (check-only over whole
 * objects), the only one of that name, or among same-named ones the one whose code matches.
 */
function locate(
  code: TargetCode,
  ours: FunctionCode,
  name: string,
  sympos: number | undefined,
  mode: CompareMode,
): { theirs: TargetFunction | string; at: number } {
  const size = ours.bytes.length;
  if (sympos !== undefined) return { theirs: code.find(name, sympos, size), at: sympos };
  const n = code.count(name);
  if (n <= 1) return { theirs: code.find(name, 0, size), at: 0 };
  let first: { theirs: TargetFunction; at: number } | undefined;
  for (let pos = 1; pos <= n; pos++) {
    const t = code.find(name, pos, size);
    if (typeof t === "string") continue;
    if (!compareCode(ours, t, mode).mismatch) return { theirs: t, at: pos };
    first ??= { theirs: t, at: pos };
  }
  return first ?? { theirs: `${code.source} has ${n} ${name}, none readable`, at: 0 };
}

/** Every function of an object, for check-only over source files. */
export function objectItems(orig: ElfFile): CheckItem[] {
  return orig.symbols
    .filter((s) => s.type === STT_FUNC && s.section && s.size > 0n)
    .map((s) => ({ name: s.name, role: "object" as const }));
}

/** The likely causes of a mismatch, most likely first. */
export function likelyCauses(report: RunPreReport): string[] {
  const bad = report.functions.filter((f) => f.status === "mismatch");
  const objects = new Set(bad.map((f) => f.object));
  const source =
    "the source is not the one that built the kernel (another version, or edited since the kernel was built)";
  const config = "the kernel config differs in an option that changes this code";
  const compiler = "another compiler version, or other compiler flags (optimisation, -f options)";
  // One function in one object: an edit. Many functions everywhere: the build as a whole.
  if (bad.length > 0 && bad.length <= 2 && objects.size === 1) return [source, config, compiler];
  const share = bad.length / Math.max(1, report.functions.length);
  return share > 0.5 ? [compiler, config, source] : [source, config, compiler];
}

export class RunPreError extends KpatchError {
  readonly report: RunPreReport;

  constructor(report: RunPreReport) {
    const first = report.functions.find((f) => f.status === "mismatch")!;
    super(
      "RUNPRE_MISMATCH",
      `${first.function} does not match the target kernel's code: the original build does not reproduce the running kernel`,
      { file: first.object, symbol: first.function, offset: first.mismatch?.offset ?? 0 },
    );
    this.name = "RunPreError";
    this.report = report;
  }
}

/** Throws RunPreError when any function mismatched. */
export function assertRunPre(report: RunPreReport): void {
  if (report.mismatched > 0) throw new RunPreError(report);
}
