/**
 * The differ's report: what changed and why, what is new, the callbacks, what data went in, what
 * the output refers to through klp relocations, what was ignored and what was forced. makeReport() builds it from the
 * context; formatReport() prints it as text.
 */
import { callbackSectionName } from "../klp/format.js";
import type { ChangeWhy, DiffContext } from "./context.js";
import { DiffError } from "./diff-error.js";
import { targetSymbols } from "./external-symbols.js";
import type { Unit } from "./object-index.js";
import type { OutputBuilder } from "./output-builder.js";

export interface ChangedFunction {
  /** The name in the patched object (and in the output). */
  name: string;
  /** The name of the function in the running kernel (differs only in a clone's number). */
  originalName: string;
  target: string;
  /** Position of the original among the target's symbols of that name (0: unique). */
  sympos: number;
  oldSize: number;
  newSize: number;
  why: ChangeWhy;
  /** Split-out parts (.cold) that go with it. */
  children: string[];
  /** True for a local (static) function. */
  local: boolean;
}

export interface NewFunction {
  name: string;
  size: number;
  local: boolean;
}

/** A changed function without an ftrace hook: the patch carries its new copy and redirects its callers. */
export interface CarriedFunction {
  name: string;
  /** The functions that call it, patched in its stead. */
  callers: string[];
}

export interface IncludedData {
  name: string;
  section: string;
  size: number;
  why:
    | "new"
    | "changed read-only data"
    | "string literals"
    | "anonymous read-only data"
    | "anonymous compiler data (a fresh copy)";
}

/** A KPATCH_*_CALLBACK: the function goes into the output as new code, never as a changed function. */
export interface CallbackReport {
  /** pre_patch, post_patch, pre_unpatch or post_unpatch. */
  kind: string;
  /** The callback function (in the patched object and the output). */
  name: string;
  /** The output section holding the pointer to it: `.kpatch_ts.callbacks.<kind>`. */
  section: string;
  /** True when the running kernel has the function too (the patch still carries its own copy). */
  existing: boolean;
}

export interface KlpReference {
  /** The output symbol: `.klp.sym.<target>.<name>,<sympos>`. */
  symbol: string;
  name: string;
  sympos: number;
}

export interface DiffReport {
  object: string;
  target: string;
  changed: ChangedFunction[];
  /** New functions of the patch (callbacks are listed under `callbacks` instead). */
  new: NewFunction[];
  /** Changed functions ftrace cannot redirect, reached through their (changed) callers instead. */
  carried: CarriedFunction[];
  callbacks: CallbackReport[];
  data: IncludedData[];
  klp: KlpReference[];
  /**
   * Unchanged locals the output carries a copy of, because the target has several of the name and
   * which is ours cannot be told (copy-ambiguous-locals.ts): name and why.
   */
  copied: { name: string; why: string }[];
  /** Symbols the output refers to by their plain name (exported, or defined by the patch module). */
  external: string[];
  /** Sections and symbols left out, and why (KPATCH_IGNORE_FUNCTION, KPATCH_IGNORE_SECTION, policy). */
  ignored: { name: string; why: string }[];
  /** Functions named by KPATCH_FORCE_UNSAFE and what forcing did (each also a warning). */
  forced: { name: string; why: string }[];
  warnings: string[];
  /**
   * What the patched code does differently besides the change ("tracepoint xfs_iomap_alloc will not
   * fire in xfs_iomap_write_direct while patched"): kpatch-build puts them in the module's modinfo.
   */
  notes: string[];
}

export function makeReport(ctx: DiffContext, b: OutputBuilder | undefined): DiffReport {
  const report: DiffReport = {
    object: ctx.patched.file.path ?? "",
    target: ctx.target,
    changed: ctx.changedFunctions().map((u) => changedFunction(ctx, u)),
    new: ctx
      .newFunctions()
      .filter((u) => !ctx.directives.isCallback(u) && (ctx.included.has(u) || !ctx.directives.ignoreWhy(u)))
      .map((u) => ({ name: u.sym.name, size: Number(u.sym.size), local: u.sym.isLocal })),
    carried: [...ctx.carried].map(([u, callers]) => ({ name: u.sym.name, callers })),
    callbacks: ctx.directives.callbacks.map((c) => ({
      kind: c.kind,
      name: c.unit.sym.name,
      section: callbackSectionName(c.kind),
      existing: ctx.twinOf(c.unit.sym) !== undefined,
    })),
    data: [],
    klp: [],
    copied: [...ctx.copied].map(([u, why]) => ({ name: u.sym.name, why })),
    external: [],
    ignored: [...ctx.ignored].map(([name, why]) => ({ name, why })),
    forced: [...ctx.forced].map(([name, why]) => ({ name, why })),
    warnings: ctx.warnings,
    notes: [...ctx.notes],
  };
  for (const u of ctx.included) {
    if (u.sym.isFunction || ctx.copied.has(u)) continue;
    const status = ctx.status.get(u);
    report.data.push({
      name: u.sym.name,
      section: u.section.name,
      size: u.end - u.start,
      why: status === "new" ? "new" : "changed read-only data",
    });
  }
  for (const sec of ctx.includedSections) {
    const kind = ctx.patched.info.get(sec)?.kind;
    report.data.push({
      name: sec.name,
      section: sec.name,
      size: sec.size,
      why:
        kind === "string"
          ? "string literals"
          : kind === "rodata"
            ? "anonymous read-only data"
            : "anonymous compiler data (a fresh copy)",
    });
  }
  if (b) {
    for (const ref of b.externals.values()) {
      if (ref.klp) report.klp.push({ symbol: ref.outName, name: ref.name, sympos: ref.sympos });
      else report.external.push(ref.outName);
    }
  }
  report.data.sort((x, y) => x.name.localeCompare(y.name));
  report.klp.sort((x, y) => x.symbol.localeCompare(y.symbol));
  report.external.sort();
  return report;
}

function changedFunction(ctx: DiffContext, u: Unit): ChangedFunction {
  const twin = ctx.twinOf(u.sym)!;
  const orig = ctx.orig.unitOf.get(twin)!;
  let resolved: { name: string; sympos: number };
  try {
    resolved = targetSymbols(ctx).resolve(twin.name, twin.isLocal, ctx.orig);
  } catch (e) {
    if (e instanceof DiffError) {
      throw new DiffError(
        e.code,
        `Cannot name ${u.sym.name} for the patch: ${e.message}`,
        { file: ctx.patched.file.path, symbol: u.sym.name },
        { cause: e },
      );
    }
    throw e;
  }
  return {
    name: u.sym.name,
    originalName: resolved.name,
    target: ctx.target,
    sympos: resolved.sympos,
    oldSize: Number(orig.sym.size),
    newSize: Number(u.sym.size),
    why: ctx.why.get(u) ?? { offset: 0, instruction: "", detail: "changed" },
    children: u.children.map((c) => c.sym.name),
    local: u.sym.isLocal,
  };
}

const hex = (n: number): string => (n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`);

/** The report as text, the way a patch author reads it. */
export function formatReport(r: DiffReport): string {
  const lines: string[] = [];
  const obj = r.object || "object";
  for (const c of r.changed) {
    const pos = c.sympos ? `,${c.sympos}` : "";
    const insn = c.why.instruction
      ? `: ${c.why.originalInstruction ? `${c.why.originalInstruction} -> ` : ""}${c.why.instruction}`
      : "";
    lines.push(
      `${obj}: changed function: ${c.name} (${r.target}:${c.originalName}${pos}, 0x${c.oldSize.toString(16)} bytes)`,
    );
    lines.push(`    at ${c.name}+${hex(c.why.offset)}${insn} (${c.why.detail})`);
    if (c.children.length > 0)
      lines.push(
        `    with ${c.children.join(", ")}: split out of ${c.name} by the compiler, copied with it and reached only through it (not a function patched on its own)`,
      );
  }
  for (const f of r.new) lines.push(`${obj}: new function: ${f.name}`);
  for (const f of r.carried)
    lines.push(
      `${obj}: changed function without an ftrace hook: ${f.name}, carried and reached through ${f.callers.join(", ")}`,
    );
  for (const c of r.callbacks) lines.push(`${obj}: ${c.kind} callback: ${c.name}`);
  for (const d of r.data) lines.push(`${obj}: included data: ${d.name} (${d.why}, ${d.size} bytes)`);
  for (const k of r.klp) lines.push(`${obj}: klp reference: ${k.symbol}`);
  for (const c of r.copied) lines.push(`${obj}: copied: ${c.name}: ${c.why}`);
  if (r.changed.length + r.new.length > 0) {
    const parts = r.changed.reduce((n, c) => n + c.children.length, 0);
    lines.push(
      `${obj}: ${r.changed.length} function(s) patched (one klp_func each), ${r.new.length} new${parts ? `; ${parts} split-out part(s) go with their parents and are not counted` : ""}`,
    );
  }
  const byWhy = new Map<string, string[]>();
  for (const i of r.ignored) byWhy.set(i.why, [...(byWhy.get(i.why) ?? []), i.name]);
  for (const [why, names] of byWhy) lines.push(`${obj}: ignored: ${names.join(", ")}: ${why}`);
  for (const w of r.warnings) lines.push(`${obj}: warning: ${w}`);
  for (const n of r.notes) lines.push(`${obj}: note: ${n}`);
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}
