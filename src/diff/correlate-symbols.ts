/**
 * correlateSymbols(): pair every function and data object of the original with its twin in the
 * patched object, then their sections and section symbols. Names first; then names without the
 * numbers GCC gives clones and static locals (.isra.N, .constprop.N, .part.N, name.N), when that
 * leaves one candidate on each side. Numbered static locals that functions use pair only by those
 * functions (correlateByUsers): their numbers say nothing (`lock.1` may be another call site's
 * lock after an edit), their users do.
 */
import type { ElfReloc, ElfSection, ElfSymbol } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import type { ObjectIndex, Unit } from "./object-index.js";
import { pcAdjust } from "./reloc-target.js";

/**
 * `foo.isra.0` → `foo.isra`, `count.3` → `count`, `foo.cold` → `foo.cold`: the numbers removed.
 * GCC numbers its clones (.isra: scalar replacement of aggregates, .constprop: constant
 * propagation, .part: partial inlining, .lto_priv) and static locals per translation unit in
 * creation order, so the numbers move with unrelated edits while the rest names the thing.
 */
export function baseName(name: string): string {
  return name.replace(/\.\d+(?=\.|$)/g, "");
}

export function correlateSymbols(ctx: DiffContext): void {
  correlateUnits(ctx, ctx.orig.functions, ctx.patched.functions);
  const settled = correlateByUsers(ctx);
  const rest = (units: Unit[]) => units.filter((u) => !settled.has(u));
  correlateUnits(ctx, rest(ctx.orig.objects), rest(ctx.patched.objects));
  correlateUndefined(ctx);
  correlateSections(ctx);
}

function correlateUnits(ctx: DiffContext, origUnits: Unit[], patchedUnits: Unit[]): void {
  const unmatchedO = new Set(origUnits);
  const unmatchedP = new Set(patchedUnits);
  const pair = (o: Unit, p: Unit): void => {
    ctx.setTwins(o.sym, p.sym);
    unmatchedO.delete(o);
    unmatchedP.delete(p);
  };
  // 1. The same name, once on each side (globals are always unique).
  for (const key of [(u: Unit) => u.sym.name, (u: Unit) => baseName(u.sym.name)]) {
    const byKeyO = groupBy([...unmatchedO], key);
    const byKeyP = groupBy([...unmatchedP], key);
    for (const [k, os] of byKeyO) {
      const ps = byKeyP.get(k);
      if (os.length === 1 && ps?.length === 1 && compatible(os[0]!, ps[0]!)) pair(os[0]!, ps[0]!);
    }
  }
}

/** A function pairs with a function, an object with an object, a global with a global. */
function compatible(o: Unit, p: Unit): boolean {
  return o.sym.type === p.sym.type && o.sym.isLocal === p.sym.isLocal;
}

/**
 * Numbered static locals (and gcc's switch tables, CSWTCH.N) that functions use, renumbered by
 * every edit (`__key.44`, `__key.46`, `lock.65414`...): pair them by the functions that use them. Each
 * use is a key "twin function # ordinal": the ordinal is the object's place among the same-base
 * statics the function refers to, in code order (two mutex_init() in one function make two
 * `__key`s told apart only by order). A function contributes keys only when it refers to as many
 * same-base statics in both versions, so an added or removed one never shifts the others. An
 * original pairs with the patched object every one of its keys names, and only when that object's
 * keys all name it back; conflicts leave both unpaired (verifyNewStatics decides what that costs).
 * Returns the statics some function uses: they never pair by name.
 */
function correlateByUsers(ctx: DiffContext): Set<Unit> {
  // clang names a function's static locals <function>.<name>, .1, .2...: the first is numbered too.
  const clangLocal = (index: ObjectIndex, u: Unit) => {
    const dot = u.sym.name.indexOf(".");
    return dot > 0 && index.file.findSymbols(u.sym.name.slice(0, dot)).some((s) => s.isFunction);
  };
  const numbered = (index: ObjectIndex) =>
    new Set(
      index.objects.filter(
        (u) => u.sym.isLocal && (baseName(u.sym.name) !== u.sym.name || clangLocal(index, u)),
      ),
    );
  const usesO = staticUses(ctx, ctx.orig, numbered(ctx.orig));
  const usesP = staticUses(ctx, ctx.patched, numbered(ctx.patched));
  const settled = new Set<Unit>();
  for (const uses of [usesO, usesP])
    for (const byBase of uses.values())
      for (const list of byBase.values()) for (const u of list) settled.add(u);
  const votesO = new Map<Unit, Set<Unit>>();
  const votesP = new Map<Unit, Set<Unit>>();
  const vote = (votes: Map<Unit, Set<Unit>>, from: Unit, to: Unit) => {
    const set = votes.get(from) ?? new Set<Unit>();
    votes.set(from, set);
    set.add(to);
  };
  for (const [fP, byBaseP] of usesP) {
    const twin = ctx.twinOf(fP);
    const byBaseO = twin ? usesO.get(twin) : undefined;
    if (!byBaseO) continue;
    for (const [base, ps] of byBaseP) {
      const os = byBaseO.get(base);
      if (os?.length !== ps.length) continue;
      for (let i = 0; i < ps.length; i++) {
        vote(votesO, os[i]!, ps[i]!);
        vote(votesP, ps[i]!, os[i]!);
      }
    }
  }
  for (const [o, ps] of votesO) {
    if (ps.size !== 1) continue;
    const p = [...ps][0]!;
    if (votesP.get(p)?.size === 1 && compatible(o, p)) ctx.setTwins(o.sym, p.sym);
  }
  return settled;
}

/** For each function: the `candidates` it refers to, by base name, in order of first reference. */
function staticUses(
  ctx: DiffContext,
  index: ObjectIndex,
  candidates: ReadonlySet<Unit>,
): Map<ElfSymbol, Map<string, Unit[]>> {
  const uses = new Map<ElfSymbol, Map<string, Unit[]>>();
  for (const f of index.functions) {
    let byBase: Map<string, Unit[]> | undefined;
    for (const r of ctx.relocsIn(f.section, f.start, f.end)) {
      const sec = r.symbol.section;
      if (!sec) continue;
      const target = r.symbol.isSectionSymbol ? unitAt(index, f, sec, r) : index.unitOf.get(r.symbol);
      if (!target || !candidates.has(target)) continue;
      byBase ??= new Map();
      const base = baseName(target.sym.name);
      const list = byBase.get(base);
      if (!list) byBase.set(base, [target]);
      else if (!list.includes(target)) list.push(target);
    }
    if (byBase) uses.set(f.sym, byBase);
  }
  return uses;
}

/**
 * The unit a section-symbol reference of `f` lands in. Only a section of several units needs the
 * exact offset, and so the decoder (pcAdjust): with -fdata-sections a static has its own.
 */
function unitAt(index: ObjectIndex, f: Unit, sec: ElfSection, r: ElfReloc): Unit | undefined {
  const units = index.bySection.get(sec);
  if (!units) return undefined;
  if (units.length === 1) return units[0];
  const offset = Number(r.addend) + pcAdjust(index, f.section, r);
  return units.find((u) => offset >= u.start && offset < u.end);
}

/** Undefined symbols pair by name: they are the same external symbol. */
function correlateUndefined(ctx: DiffContext): void {
  for (const p of ctx.patched.file.symbols) {
    if (!p.isUndefined || p.name === "") continue;
    const o = ctx.orig.file.findSymbols(p.name).find((s) => s.isUndefined);
    if (o) ctx.setTwins(o, p);
  }
}

/**
 * Sections of twin units are twins (when each holds only that unit); other allocated sections
 * pair by name, then by name without numbers; section symbols follow their sections.
 */
function correlateSections(ctx: DiffContext): void {
  for (const u of [...ctx.orig.functions, ...ctx.orig.objects]) {
    const twin = ctx.twinOf(u.sym);
    if (!twin?.section || !u.whole) continue;
    const p = ctx.patched.unitOf.get(twin);
    if (p?.whole) ctx.setSectionTwins(u.section, p.section);
  }
  const leftO = ctx.orig.file.sections.filter((s) => s.name !== "" && !ctx.sectionTwins.has(s));
  const leftP = ctx.patched.file.sections.filter((s) => s.name !== "" && !ctx.sectionTwins.has(s));
  for (const key of [(s: ElfSection) => s.name, (s: ElfSection) => baseName(s.name)]) {
    const byO = groupBy(
      leftO.filter((s) => !ctx.sectionTwins.has(s)),
      key,
    );
    const byP = groupBy(
      leftP.filter((s) => !ctx.sectionTwins.has(s)),
      key,
    );
    for (const [k, os] of byO) {
      const ps = byP.get(k);
      if (os.length === 1 && ps?.length === 1 && os[0]!.type === ps[0]!.type)
        ctx.setSectionTwins(os[0]!, ps[0]!);
    }
  }
  for (const [o, p] of ctx.sectionTwins) {
    if (o.file !== ctx.orig.file) continue;
    if (o.sectionSymbol && p.sectionSymbol) ctx.setTwins(o.sectionSymbol, p.sectionSymbol);
  }
}

function groupBy<T>(items: Iterable<T>, key: (t: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}
