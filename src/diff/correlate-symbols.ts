/**
 * correlateSymbols(): pair every function and data object of the original with its twin in the
 * patched object, then their sections and section symbols. Names first; then names without the
 * numbers GCC gives clones and static locals (.isra.N, .constprop.N, .part.N, name.N), when that
 * leaves one candidate on each side; then, for static locals that still share a base name, by
 * the functions that use them.
 */
import type { ElfSection, ElfSymbol } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import type { ObjectIndex, Unit } from "./object-index.js";

/** `foo.isra.0` → `foo.isra`, `count.3` → `count`, `foo.cold` → `foo.cold`: the numbers removed. */
export function baseName(name: string): string {
  return name.replace(/\.\d+(?=\.|$)/g, "");
}

export function correlateSymbols(ctx: DiffContext): void {
  correlateUnits(ctx, ctx.orig.functions, ctx.patched.functions);
  correlateUnits(ctx, ctx.orig.objects, ctx.patched.objects);
  correlateByUsers(ctx);
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
 * Static locals with the same base name in several functions (`count.0`, `count.1`): pair the
 * ones used by twin functions.
 */
function correlateByUsers(ctx: DiffContext): void {
  const usersO = usersOf(ctx, ctx.orig);
  const usersP = usersOf(ctx, ctx.patched);
  const leftO = ctx.orig.objects.filter((u) => !ctx.twins.has(u.sym));
  const leftP = ctx.patched.objects.filter((u) => !ctx.twins.has(u.sym));
  const byBaseP = groupBy(leftP, (u) => baseName(u.sym.name));
  for (const o of leftO) {
    const candidates = (byBaseP.get(baseName(o.sym.name)) ?? []).filter((p) => !ctx.twins.has(p.sym));
    const wanted = [...(usersO.get(o) ?? [])].map((f) => ctx.twinOf(f)).filter((f) => f !== undefined);
    if (wanted.length === 0) continue;
    const fits = candidates.filter((p) => {
      const users = usersP.get(p);
      return users !== undefined && wanted.every((f) => users.has(f)) && compatible(o, p);
    });
    if (fits.length === 1) ctx.setTwins(o.sym, fits[0]!.sym);
  }
}

/** For each data object: the function symbols whose code refers to it. */
function usersOf(ctx: DiffContext, index: ObjectIndex): Map<Unit, Set<ElfSymbol>> {
  const users = new Map<Unit, Set<ElfSymbol>>();
  for (const f of index.functions) {
    for (const r of ctx.relocsIn(f.section, f.start, f.end)) {
      const sec = r.symbol.section;
      if (!sec) continue;
      const target = r.symbol.isSectionSymbol
        ? findUnitIn(index, sec, Number(r.addend) + 4)
        : index.unitOf.get(r.symbol);
      if (!target || target.sym.type === f.sym.type) continue;
      const set = users.get(target) ?? new Set<ElfSymbol>();
      users.set(target, set);
      set.add(f.sym);
    }
  }
  return users;
}

function findUnitIn(index: ObjectIndex, sec: ElfSection, offset: number): Unit | undefined {
  const units = index.bySection.get(sec);
  if (!units) return undefined;
  if (units.length === 1) return units[0];
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
