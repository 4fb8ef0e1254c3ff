/**
 * onlyMovedReferences(): __init code is never patched (it has run and been freed), so for it the
 * differ only asks whether the author changed it. Two copies with the same instruction bytes
 * whose relocations differ only in where anonymous things sit are the same code: UBSAN check data
 * renumbered (`.data..Lubsan_data118` -> `...120`, clang's `.data..L__unnamed_N`, whose bytes
 * carry source lines), a static_cpu_has() piece at another offset of `.altinstr_aux`, a string
 * literal with the same text in another section, a pr_debug's descriptor (`__dyndbg`) renumbered
 * or with another line. A different instruction, a different named
 * symbol, another string's text or other bytes of anonymous read-only data stay changes.
 */
import type { DiffContext } from "./context.js";
import type { Unit } from "./object-index.js";
import { isAnonymousData } from "./policy.js";
import { bytesEqual, type RelocTarget, resolveRelocTarget, sameRelocTarget } from "./reloc-target.js";

export function onlyMovedReferences(ctx: DiffContext, o: Unit, p: Unit): boolean {
  const entryO = Number(o.sym.value);
  const entryP = Number(p.sym.value);
  if (o.end - entryO !== p.end - entryP) return false;
  if (!bytesEqual(o.section.data.subarray(entryO, o.end), p.section.data.subarray(entryP, p.end)))
    return false;
  const ro = ctx.relocsIn(o.section, entryO, o.end);
  const rp = ctx.relocsIn(p.section, entryP, p.end);
  if (ro.length !== rp.length) return false;
  return ro.every((a, i) => {
    const b = rp[i]!;
    if (a.offset - entryO !== b.offset - entryP || a.type !== b.type) return false;
    if (sameRelocTarget(ctx, o.section, a, p.section, b)) return true;
    return sameAnonymous(
      ctx,
      resolveRelocTarget(ctx.orig, o.section, a),
      resolveRelocTarget(ctx.patched, p.section, b),
    );
  });
}

/** Section names without their numbers: `.data..Lubsan_data118` -> `.data..Lubsan_data`. */
const family = (name: string): string => name.replace(/\d+/g, "");

function sameAnonymous(ctx: DiffContext, to: RelocTarget, tp: RelocTarget): boolean {
  switch (to.kind) {
    case "string":
      return tp.kind === "string" && to.text === tp.text;
    case "piece":
      return tp.kind === "piece" && family(to.section.name) === family(tp.section.name);
    case "section": {
      if (tp.kind !== "section" || family(to.section.name) !== family(tp.section.name)) return false;
      if (isAnonymousData(to.section.name)) return true; // per-site diagnostics: lines move
      // An entry of a table the differ cuts per entry (a pr_debug's __dyndbg descriptor): it
      // carries the site's line, and the table is the running kernel's business for __init code.
      const kind = ctx.orig.info.get(to.section)?.kind;
      if (kind === "special" || kind === "companion" || kind === "descriptors") return true;
      return to.addend === tp.addend && bytesEqual(to.section.data, tp.section.data);
    }
    case "entry": // a descriptor (pr_debug's): its line, its number, even its file name may move
      return tp.kind === "entry" && family(to.section.name) === family(tp.section.name);
    default:
      return false;
  }
}
