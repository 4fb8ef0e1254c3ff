/**
 * verifyChanges(): refuse what cannot be applied live, naming the symbol and why: changed
 * writable data, changed __init code or data, a changed function ftrace cannot redirect (no
 * fentry call) and that cannot be reached through its callers (reachThroughCallers), and a changed section the differ does not understand (unless KPATCH_IGNORE_SECTION
 * names it).
 */
import type { ElfSection } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import { baseName } from "./correlate-symbols.js";
import { DiffError } from "./diff-error.js";
import { FORCE_UNSAFE } from "./directives.js";
import { hasFentryCall, type Unit } from "./object-index.js";
import { isFreshStatic } from "./policy.js";
import { reachThroughCallers } from "./reach-through-callers.js";
import { referencesTo } from "./references.js";
import { bytesEqual, sameRelocTarget } from "./reloc-target.js";
import { FIXED_TABLES } from "./special/dyndbg.js";

export function verifyChanges(ctx: DiffContext): void {
  reachThroughCallers(ctx);
  for (const [unit, status] of ctx.status) if (status === "changed") verifyChangedUnit(ctx, unit);
  for (const sec of ctx.patched.file.sections) verifySectionKind(ctx, sec);
}

/** A changed unit: refused when __init, when data the kernel holds (unless forced), or without fentry. */
function verifyChangedUnit(ctx: DiffContext, unit: Unit): void {
  const kind = ctx.patched.info.get(unit.section)?.kind;
  const name = unit.sym.name;
  const why = ctx.why.get(unit)?.detail ?? "changed";
  const loc = { file: ctx.patched.file.path, section: unit.section.name, symbol: name };
  if (kind === "init") {
    throw new DiffError(
      "DIFF_INIT_CHANGED",
      `Cannot patch ${name}: it is __init ${unit.sym.isFunction ? "code" : "data"} (${unit.section.name}), which has already run and been freed (${why})`,
      loc,
    );
  }
  if (!unit.sym.isFunction && (kind === "data" || kind === "bss")) {
    const users = forcedUsers(ctx, unit);
    if (!users) {
      throw new DiffError(
        "DIFF_DATA_CHANGED",
        `Cannot patch ${name}: it is data the running kernel already holds (${unit.section.name}: ${why}); change the code that uses it instead, or use a shadow variable${unit.sym.isLocal ? ` (or, if a fresh copy is right, mark every function that uses it ${FORCE_UNSAFE})` : ""}`,
        loc,
      );
    }
    // The author forced every user: they get a fresh copy with the new contents.
    ctx.status.set(unit, "new");
    ctx.warn(
      `${FORCE_UNSAFE}: ${name} changed and only forced functions use it (${users.join(", ")}): the patch carries a fresh copy, the running kernel's value is not carried over`,
    );
    return;
  }
  if (unit.sym.isFunction && !unit.parent && !ctx.carried.has(unit) && !hasFentryCall(unit)) {
    throw new DiffError(
      "DIFF_NO_FENTRY",
      `Cannot patch ${name}: it does not call __fentry__ (notrace, noinstr or built without -pg), so ftrace cannot redirect it (${why})`,
      loc,
    );
  }
}

/**
 * Ignored sections and directives are noted as ignored; a section the differ does not know is
 * refused when it changed or is new (unless KPATCH_IGNORE_SECTION names it), else noted.
 */
function verifySectionKind(ctx: DiffContext, sec: ElfSection): void {
  const kind = ctx.patched.info.get(sec)?.kind;
  if (kind === "ignored") {
    ctx.ignored.set(sec.name, ctx.patched.info.get(sec)!.why ?? "ignored");
    return;
  }
  if (kind === "directive") {
    if (!ctx.directives.callbacks.some((c) => c.section === sec))
      ctx.ignored.set(sec.name, "a differ directive (kpatch-macros.h): read, never copied");
    return;
  }
  if (kind !== "unknown" || ctx.directives.ignoredSections.has(sec.name)) return;
  const twin = ctx.sectionTwins.get(sec);
  if (!twin || !sameSection(ctx, twin, sec)) {
    const fixed = FIXED_TABLES.find((t) => t.name === sec.name);
    throw new DiffError(
      "DIFF_UNSUPPORTED_SECTION",
      fixed
        ? `Cannot patch ${sec.name}: it ${twin ? "changed" : "is new"}, and it holds ${fixed.why}`
        : `Cannot patch ${sec.name}: the section ${twin ? "changed" : "is new"} and the differ does not know what it holds`,
      { file: ctx.patched.file.path, section: sec.name },
    );
  }
  ctx.ignored.set(sec.name, "unchanged, and not a section the differ copies");
}

function sameSection(ctx: DiffContext, o: ElfSection, p: ElfSection): boolean {
  if (o.size !== p.size || !bytesEqual(o.data, p.data)) return false;
  const ro = ctx.relocsOf(o);
  const rp = ctx.relocsOf(p);
  if (ro.length !== rp.length) return false;
  return ro.every((r, i) => r.offset === rp[i]!.offset && sameRelocTarget(ctx, o, r, p, rp[i]!));
}

/**
 * The functions that use the static `unit`, when every reference to it is from a function the
 * author forced (KPATCH_FORCE_UNSAFE); undefined otherwise (a global, an unforced user, a pointer
 * in data).
 */
function forcedUsers(ctx: DiffContext, unit: Unit): string[] | undefined {
  if (!unit.sym.isLocal || ctx.directives.forced.size === 0) return undefined;
  const users = new Set<string>();
  for (const r of referencesTo(ctx, ctx.patched, unit)) {
    if (r.kind === "ignored") continue;
    const from = r.from?.parent ?? r.from;
    if (!from?.sym.isFunction || !ctx.directives.isForced(from)) return undefined;
    users.add(from.sym.name);
  }
  return users.size > 0 ? [...users] : undefined;
}

/**
 * After includeDependencies: a new static variable the patch carries whose base name an unpaired
 * original variable also has is most likely the same variable under a renumbered name that could
 * not be matched (correlateByUsers): a fresh copy would split its state in two. Only writable
 * statics hold state: read-only ones (gcc's CSWTCH tables, printk index entries, const tables)
 * are copied safely, and a static no included code uses (one only an ignored section like
 * .printk_index refers to) never reaches the patch. Bookkeeping statics (policy.ts
 * FRESH_STATIC_LOCALS) may start fresh, with a warning.
 */
export function verifyNewStatics(ctx: DiffContext): void {
  const holdsState = (index: typeof ctx.orig, u: Unit) => {
    const kind = index.info.get(u.section)?.kind;
    return u.sym.isLocal && (kind === "data" || kind === "bss");
  };
  const orphans = new Map<string, string[]>();
  for (const o of ctx.orig.objects) {
    if (ctx.twinOf(o.sym) || !holdsState(ctx.orig, o)) continue;
    const base = baseName(o.sym.name);
    orphans.set(base, [...(orphans.get(base) ?? []), o.sym.name]);
  }
  for (const p of ctx.patched.objects) {
    if (ctx.status.get(p) !== "new" || !ctx.included.has(p) || !holdsState(ctx.patched, p)) continue;
    const base = baseName(p.sym.name);
    const orig = orphans.get(base);
    if (orig === undefined) continue;
    // clang names a static local <function>.<name> (dev_setup.__key.1), gcc <name>.<N> (__key.3).
    if (isFreshStatic(base) || isFreshStatic(base.slice(base.lastIndexOf(".") + 1))) {
      ctx.warn(
        `${p.sym.name} starts fresh in the patch (it may be the original ${orig.join(" or ")}): ${base} only keeps bookkeeping`,
      );
      continue;
    }
    const users = usersIn(ctx, p);
    throw new DiffError(
      "DIFF_SYMBOL_MISMATCH",
      `Cannot tell whether static ${p.sym.name} is the original ${orig.join(" or ")}: the functions that use it (${users}) do not use one of them the same way, and a new copy would split its state; rename it if it is new, or keep its users' other ${base} statics as they were`,
      { file: ctx.patched.file.path, section: p.section.name, symbol: p.sym.name },
    );
  }
}

/** The included functions that refer to data object `u`, for a message. */
function usersIn(ctx: DiffContext, u: Unit): string {
  const names: string[] = [];
  for (const f of ctx.included) {
    if (!f.sym.isFunction) continue;
    if (
      ctx
        .relocsIn(f.section, f.start, f.end)
        .some((r) => ctx.patched.unitOf.get(r.symbol) === u || r.symbol === u.section.sectionSymbol)
    )
      names.push(f.sym.name);
  }
  return names.join(", ") || "none";
}
