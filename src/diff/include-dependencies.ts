/**
 * includeDependencies(): starting from the changed and new functions, follow relocations and
 * include what the new code needs that the running kernel does not have: new functions, new data
 * objects, changed read-only data, string literals, anonymous read-only data, and the compiler's
 * anonymous writable data (UBSAN check sites: a fresh copy, as the running kernel's has no name). Everything that
 * already exists stays outside and is referred to by name (externalName() in external-symbols.ts). Callbacks
 * are new by then (applyDirectives); a new function or object the author ignored is included
 * only when included code needs it.
 *
 * A jump into a code-piece section (static_cpu_has()'s .altinstr_aux) takes the piece along: what
 * it refers to is followed as if the function referred to it, and a piece that jumps into a
 * function the patch does not carry is refused (it would land in the running kernel's copy).
 *
 * An unchanged local whose copy in the running kernel cannot be told apart from others of its
 * name is copied or refused (copy-ambiguous-locals.ts).
 *
 * IBT: taking the address of an existing function is only safe when its endbr64 is there at run
 * time; a function without endbr64, or one the kernel may have sealed, is refused.
 */
import { type ElfReloc, type ElfSection, R_X86_64_PLT32, STB_LOCAL } from "../elf/index.js";
import type { ErrorLocation } from "../util/errors.js";
import { codePieceJumpRefusal, codePieceProblem, codePieceRefusal, findCodePiece } from "./code-pieces.js";
import type { DiffContext } from "./context.js";
import { copyWhenAmbiguous } from "./copy-ambiguous-locals.js";
import { DiffError } from "./diff-error.js";
import { findUnitAt, hasEndbr, type Unit } from "./object-index.js";
import { isAnonymousData } from "./policy.js";
import { isDirectBranch } from "./references.js";
import { describeTarget, resolveRelocTarget } from "./reloc-target.js";
import { entrySizeOf } from "./special/special-kind.js";

export function includeDependencies(ctx: DiffContext): void {
  const work: Unit[] = [];
  const include = (u: Unit): void => {
    if (ctx.included.has(u)) return;
    ctx.included.add(u);
    work.push(u);
    for (const child of u.children) include(child);
  };
  for (const f of ctx.patched.functions) {
    const status = ctx.status.get(f);
    if (status === "same" || f.parent) continue;
    // A new function the author ignored goes in only if included code needs it.
    if (ctx.directives.ignoreWhy(f)) continue;
    if (ctx.patched.info.get(f.section)?.kind === "init") {
      if (status === "new") ctx.ignored.set(f.sym.name, "new __init function: it never runs in a live patch");
      continue;
    }
    include(f);
  }
  for (const o of ctx.patched.objects) {
    if (
      ctx.status.get(o) !== "same" &&
      o.sym.bind !== STB_LOCAL &&
      ctx.patched.info.get(o.section)?.kind !== "init" &&
      !ctx.directives.ignoreWhy(o)
    )
      include(o);
  }
  while (work.length > 0) {
    const u = work.pop()!;
    for (const r of ctx.relocsIn(u.section, u.start, u.end)) followReloc(ctx, u, u.section, r, include);
  }
}

/** A relocation being followed: where it is and what the refusals name. */
interface Reference {
  from: Unit;
  base: ElfSection;
  r: ElfReloc;
  /** `base` is a code piece `from` jumps into, not `from`'s own section. */
  inPiece: boolean;
  loc: ErrorLocation;
}

/**
 * A reference to a unit: new or changed ones are included; __init ones are refused when changed
 * (warned about when not); a code piece may not jump to a function; an unchanged function whose
 * address is taken is checked (checkAddressTaken).
 */
function followUnitReference(ctx: DiffContext, ref: Reference, unit: Unit, include: (u: Unit) => void): void {
  const { from, base, r, loc } = ref;
  const status = ctx.status.get(unit);
  const kind = ctx.patched.info.get(unit.section)?.kind;
  if (kind === "init") {
    if (status !== "same") {
      throw new DiffError(
        "DIFF_INIT_CHANGED",
        `Cannot patch ${from.sym.name}: it refers to ${unit.sym.name}, new or changed __init code or data`,
        loc,
      );
    }
    ctx.warn(
      `${from.sym.name} refers to __init symbol ${unit.sym.name}, which the running kernel may have freed`,
    );
    return;
  }
  if (status === "new" || status === "changed") {
    include(unit.parent ?? unit);
    return;
  }
  // A local the target's symbols cannot tell apart, taken along as a copy of the patch's own.
  if (ctx.copied.has(unit) || (!ref.inPiece && unit.sym.isLocal && copyWhenAmbiguous(ctx, from, r, unit))) {
    include(unit.parent ?? unit);
    return;
  }
  if (ref.inPiece && unit.sym.isFunction)
    throw codePieceJumpRefusal(from.sym.name, base, r.offset, unit.sym.name, loc.file);
  if (unit.sym.isFunction && from.sym.isFunction && !isDirectBranch(from, r))
    checkAddressTaken(ctx, from, unit, loc);
}

/** Follows `r` of `base`: the section of `from`, or a code piece `from` jumps into. */
function followReloc(
  ctx: DiffContext,
  from: Unit,
  base: ElfSection,
  r: ElfReloc,
  include: (u: Unit) => void,
): void {
  const t = resolveRelocTarget(ctx.patched, base, r);
  const inPiece = base !== from.section;
  const loc = inPiece
    ? { file: ctx.patched.file.path, section: base.name, symbol: from.sym.name }
    : {
        file: ctx.patched.file.path,
        section: from.section.name,
        symbol: from.sym.name,
        offset: r.offset - Number(from.sym.value),
      };
  switch (t.kind) {
    case "unit":
      followUnitReference(ctx, { from, base, r, inPiece, loc }, t.unit, include);
      return;
    case "string":
      ctx.includedSections.add(t.section);
      return;
    case "section": {
      const kind = ctx.patched.info.get(t.section)?.kind;
      if (kind === "rodata" || kind === "string" || isAnonymousData(t.section.name)) {
        ctx.includedSections.add(t.section);
        return;
      }
      if (kind === "ignored" || kind === "special" || kind === "companion") return;
      throw new DiffError(
        "DIFF_UNSUPPORTED_SECTION",
        `Cannot patch ${from.sym.name}: it refers to ${describeTarget(t)}, which holds no symbol to refer to`,
        loc,
      );
    }
    case "piece": {
      const problem = inPiece
        ? "a piece jumps into another"
        : (codePieceProblem(t.section, t.offset) ?? specialEntryIn(ctx, t.section, t.offset));
      if (problem) throw codePieceRefusal(from.sym.name, t.section, t.offset, problem, loc.file);
      for (const pr of findCodePiece(t.section, t.offset)!.relocs)
        followReloc(ctx, from, t.section, pr, include);
      return;
    }
    case "entry":
      // The descriptor is copied with the code (descriptor-copier.ts): what it refers to comes too.
      if (t.start < 0) return;
      for (const dr of ctx.relocsIn(t.section, t.start, t.start + t.size))
        followReloc(ctx, from, t.section, dr, include);
      return;
    case "symbol":
      return;
  }
}

/**
 * A reference from a special-section entry into the piece of `section` at `offset` other than
 * the entry's anchor, if any: cloneSpecialSections keeps the entries anchored in a carried piece
 * (a refcount_t ud2's __ex_table entry, a lock prefix's .smp_locks entry) but would leave another
 * field pointing into the running kernel's copy. static_cpu_has()'s pieces have none.
 */
function specialEntryIn(ctx: DiffContext, section: ElfSection, offset: number): string | undefined {
  const piece = findCodePiece(section, offset)!;
  for (const sec of ctx.patched.file.sections) {
    const info = ctx.patched.info.get(sec);
    if (info?.kind !== "special" || !info.special) continue;
    const size = entrySizeOf(info.special.size, ctx.options.entrySizes ?? {});
    for (const r of ctx.relocsOf(sec)) {
      if (r.symbol.section !== section) continue;
      if (size !== undefined && r.offset % size === info.special.anchor) continue;
      const at = Number(r.addend + r.symbol.value);
      if (at >= piece.start && at < piece.end)
        return `a ${sec.name} entry refers to the piece there (at +0x${at.toString(16)}) by a field that is not its anchor: the entry is kept only with what it is anchored in`;
    }
  }
  return undefined;
}

/**
 * The new code takes the address of `target`, an existing function. An indirect call to it needs
 * its endbr64: refuse when it has none, or when the running kernel may have sealed it.
 */
function checkAddressTaken(
  ctx: DiffContext,
  from: Unit,
  target: Unit,
  loc: { file?: string; symbol?: string },
): void {
  const twin = ctx.twinOf(target.sym);
  const orig = twin ? ctx.orig.unitOf.get(twin) : undefined;
  if (!orig) return;
  const name = orig.sym.name;
  if (!hasEndbr(orig)) {
    if (!hasEndbr(target)) return; // not IBT-built (or never indirect): nothing to check
    throw new DiffError(
      "DIFF_IBT_SEALED",
      `Cannot patch ${from.sym.name}: it takes the address of ${name}, which has no endbr64 in the running kernel (IBT would fault on an indirect call); patch a caller that takes its address too, or call it directly`,
      loc,
    );
  }
  const sealed = ctx.options.symbols?.isSealed(name, ctx.orig);
  if (sealed === false) return;
  if (sealed === undefined && addressTakenIn(ctx, orig)) return;
  throw new DiffError(
    "DIFF_IBT_SEALED",
    sealed
      ? `Cannot patch ${from.sym.name}: it takes the address of ${name}, whose endbr64 the running kernel sealed at boot (never called indirectly before): an indirect call would fault`
      : `Cannot patch ${from.sym.name}: it takes the address of ${name}, which the original code never does, so the running kernel may have sealed its endbr64; pass vmlinux with --symbols to check`,
    loc,
  );
}

/** True when the original object takes `unit`'s address somewhere (so objtool did not seal it). */
function addressTakenIn(ctx: DiffContext, unit: Unit): boolean {
  for (const sec of ctx.orig.file.sections) {
    const kind = ctx.orig.info.get(sec)?.kind;
    if (!sec.rela || kind === "ignored" || kind === "meta" || kind === "special" || kind === "companion")
      continue;
    if (kind === "pieces") continue; // static_cpu_has()'s jumps back: branches, no address taken
    if (kind === "directive") continue; // never linked into the kernel
    for (const r of ctx.relocsOf(sec)) {
      if (r.type === R_X86_64_PLT32) continue;
      const t = resolveRelocTarget(ctx.orig, sec, r);
      if (t.kind !== "unit" || t.unit !== unit) continue;
      const from = kind === "text" ? findUnitAt(ctx.orig, sec, r.offset) : undefined;
      if (!from || !isDirectBranch(from, r)) return true;
    }
  }
  return false;
}
