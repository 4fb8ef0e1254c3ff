/**
 * readDirectives(): read the patch author's kpatch-macros.h directives from the patched object's
 * `.kpatch_ts.*` sections, or kpatch's `.kpatch.*` ones (arrays of entries that start with a
 * pointer, one R_X86_64_64 relocation each, zeros after it: policy.ts DIRECTIVE_SECTIONS) into
 * ctx.directives, and refuse what cannot be honoured: an unknown directive section, two callbacks
 * of one kind, a callback that is not a function defined in this object, a function that is both
 * ignored and forced. The original object's `.kpatch_ts.*` sections, if any, are not read.
 */
import { type ElfSection, R_X86_64_64 } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import { DiffError } from "./diff-error.js";
import { FORCE_UNSAFE, IGNORE_FUNCTION, IGNORE_SECTION } from "./directives.js";
import type { Unit } from "./object-index.js";
import { DIRECTIVE_SECTIONS, type DirectiveSection } from "./policy.js";
import { describeTarget, type RelocTarget, resolveRelocTarget, stringAt } from "./reloc-target.js";

/** Section kinds whose changes KPATCH_IGNORE_SECTION can drop: units the differ compares, or unknown data. */
const IGNORABLE = new Set(["text", "data", "bss", "rodata", "init", "unknown"]);

export function readDirectives(ctx: DiffContext): void {
  const file = ctx.patched.file.path;
  for (const sec of ctx.patched.file.sections) {
    if (ctx.patched.info.get(sec)?.kind !== "directive") continue;
    const known = DIRECTIVE_SECTIONS.find((d) => d.name === sec.name);
    if (!known) {
      throw new DiffError(
        "DIFF_BAD_DIRECTIVE",
        `Cannot read ${sec.name}: kpatch-macros.h makes no such section (it makes ${DIRECTIVE_SECTIONS.map((d) => d.name).join(", ")})`,
        { file, section: sec.name },
      );
    }
    if (known.kind === "obsolete") {
      throw new DiffError("DIFF_BAD_DIRECTIVE", `Cannot use ${sec.name}: ${known.why}`, {
        file,
        section: sec.name,
      });
    }
    const targets = pointers(ctx, sec, known);
    switch (known.kind) {
      case "callback":
        readCallback(ctx, sec, known, targets);
        break;
      case "ignore-function":
        for (const t of targets) {
          const u = functionOf(ctx, sec, t, IGNORE_FUNCTION);
          if (!u) continue;
          ctx.directives.ignoredFunctions.add(u);
          ctx.ignored.set(u.sym.name, IGNORE_FUNCTION);
        }
        break;
      case "ignore-section":
        for (const t of targets) readIgnoredSection(ctx, sec, t);
        break;
      case "force-function":
        for (const t of targets) {
          const u = functionOf(ctx, sec, t, FORCE_UNSAFE);
          if (u) ctx.directives.forced.add(u);
        }
        break;
    }
  }
  refuseContradictions(ctx);
}

/** The pointers of a directive section (the first field of each entry), resolved in the patched object. */
function pointers(ctx: DiffContext, sec: ElfSection, known: DirectiveSection): RelocTarget[] {
  const loc = { file: ctx.patched.file.path, section: sec.name };
  const size = known.entrySize;
  if (sec.isNobits || sec.size % size !== 0) {
    throw new DiffError(
      "DIFF_BAD_DIRECTIVE",
      `Cannot read ${sec.name}: it is not an array of ${size}-byte entries (size ${sec.size}); use the macros of kpatch-macros.h`,
      loc,
    );
  }
  const relocs = ctx.relocsOf(sec);
  const out: RelocTarget[] = [];
  for (let at = 0; at < sec.size; at += size) {
    const here = relocs.filter((r) => r.offset >= at && r.offset < at + size);
    const r = here[0];
    const rest = sec.data.subarray(at + 8, at + size);
    if (here.length !== 1 || r!.offset !== at || r!.type !== R_X86_64_64 || rest.some((b) => b !== 0)) {
      throw new DiffError(
        "DIFF_BAD_DIRECTIVE",
        `Cannot read ${sec.name}+0x${at.toString(16)}: the entry is not a pointer to a symbol (one R_X86_64_64 relocation)`,
        { ...loc, offset: at },
      );
    }
    out.push(resolveRelocTarget(ctx.patched, sec, r!));
  }
  return out;
}

/**
 * The function a directive pointer names: a function of the patched object (its parent, for a
 * `.cold` part), or undefined with a warning when it is defined elsewhere. Data is refused.
 */
function functionOf(ctx: DiffContext, sec: ElfSection, t: RelocTarget, macro: string): Unit | undefined {
  if (t.kind === "symbol") {
    ctx.warn(
      `${macro}(${t.sym.name}) has no effect: ${t.sym.name} is not defined in this object (put the directive in the file that defines it)`,
    );
    return undefined;
  }
  if (t.kind !== "unit" || !t.unit.sym.isFunction || t.addend !== 0n) {
    throw new DiffError(
      "DIFF_BAD_DIRECTIVE",
      `Cannot honour ${macro}(${describeTarget(t)}): it does not point to a function`,
      { file: ctx.patched.file.path, section: sec.name },
    );
  }
  return t.unit.parent ?? t.unit;
}

function readCallback(
  ctx: DiffContext,
  sec: ElfSection,
  known: DirectiveSection,
  targets: RelocTarget[],
): void {
  const file = ctx.patched.file.path;
  const kind = known.callback!;
  const before = ctx.directives.callbacks.find((c) => c.kind === kind);
  if (before) {
    throw new DiffError(
      "DIFF_BAD_DIRECTIVE",
      `Cannot use ${sec.name}: ${before.section.name} already names the ${kind} callback (${before.unit.sym.name}); one ${kind} callback per object is allowed`,
      { file, section: sec.name },
    );
  }
  if (targets.length !== 1) {
    throw new DiffError(
      "DIFF_BAD_DIRECTIVE",
      `Cannot use ${sec.name}: it holds ${targets.length} ${kind} callbacks (${targets.map(describeTarget).join(", ")}); one ${kind} callback per object is allowed`,
      { file, section: sec.name },
    );
  }
  const t = targets[0]!;
  const name = describeTarget(t);
  if (t.kind === "symbol") {
    throw new DiffError(
      "DIFF_BAD_DIRECTIVE",
      `Cannot use ${name} as the ${kind} callback: it is not defined in this object; define the callback in the file that declares it`,
      { file, section: sec.name, symbol: name },
    );
  }
  const unit = functionOf(ctx, sec, t, `KPATCH_${kind.toUpperCase()}_CALLBACK`)!;
  if (ctx.patched.info.get(unit.section)?.kind !== "text") {
    throw new DiffError(
      "DIFF_BAD_DIRECTIVE",
      `Cannot use ${unit.sym.name} as the ${kind} callback: it is in ${unit.section.name}, not in ordinary code (an __init function is freed before any patch loads)`,
      { file, section: sec.name, symbol: unit.sym.name },
    );
  }
  ctx.directives.callbacks.push({ kind, section: sec, unit });
}

function readIgnoredSection(ctx: DiffContext, sec: ElfSection, t: RelocTarget): void {
  const file = ctx.patched.file.path;
  const name =
    t.kind === "string" ? t.text : t.kind === "section" ? stringAt(t.section, Number(t.addend)) : undefined;
  if (name === undefined) {
    throw new DiffError(
      "DIFF_BAD_DIRECTIVE",
      `Cannot honour ${IGNORE_SECTION}(${describeTarget(t)}): it does not point to a string literal naming a section`,
      { file, section: sec.name },
    );
  }
  const named = ctx.patched.file.findSections(name);
  if (named.length === 0) {
    ctx.warn(`${IGNORE_SECTION}("${name}") has no effect: the object has no section of that name`);
    return;
  }
  for (const s of named) {
    const kind = ctx.patched.info.get(s)?.kind ?? "unknown";
    if (kind === "special" || kind === "companion" || kind === "pieces") {
      throw new DiffError(
        "DIFF_BAD_DIRECTIVE",
        `Cannot honour ${IGNORE_SECTION}("${name}"): the patched code needs its entries (a special section the differ copies entry by entry)`,
        { file, section: name },
      );
    }
    if (!IGNORABLE.has(kind)) {
      ctx.warn(
        `${IGNORE_SECTION}("${name}") has no effect: the differ never compares a section of its kind (${kind})`,
      );
      return;
    }
  }
  ctx.directives.ignoredSections.add(name);
  ctx.ignored.set(name, IGNORE_SECTION);
}

/** A function may be a callback, ignored, or forced: not two of them. */
function refuseContradictions(ctx: DiffContext): void {
  const d = ctx.directives;
  const file = ctx.patched.file.path;
  const refuse = (u: Unit, what: string): never => {
    throw new DiffError("DIFF_BAD_DIRECTIVE", `Cannot honour the directives for ${u.sym.name}: ${what}`, {
      file,
      symbol: u.sym.name,
    });
  };
  for (const u of d.forced) {
    const why = d.ignoreWhy(u);
    if (why) refuse(u, `it is both ${FORCE_UNSAFE} and ignored (${why})`);
    if (d.isCallback(u)) refuse(u, `a callback is never patched, so ${FORCE_UNSAFE} cannot apply to it`);
  }
  for (const c of d.callbacks) {
    const why = d.ignoreWhy(c.unit);
    if (why) refuse(c.unit, `it is a ${c.kind} callback, which the patch must carry, and ignored (${why})`);
  }
}
