/**
 * markChangedData(): compare every patched data object with its twin (bytes, size, and what its
 * relocations point to) and mark it same, changed or new. A function that refers to changed
 * read-only data is changed too: it must use the new copy. Changes the author ignored
 * (KPATCH_IGNORE_SECTION, KPATCH_IGNORE_FUNCTION) leave the unit "same".
 */
import type { DiffContext } from "./context.js";
import { ignoresChange } from "./directives.js";
import type { Unit } from "./object-index.js";
import { bytesEqual, resolveRelocTarget, sameRelocTarget } from "./reloc-target.js";

export function markChangedData(ctx: DiffContext): void {
  for (const p of ctx.patched.objects) {
    const twin = ctx.twinOf(p.sym);
    const o = twin ? ctx.orig.unitOf.get(twin) : undefined;
    if (!o) {
      ctx.status.set(p, "new");
      continue;
    }
    let detail = compareData(ctx, o, p);
    if (detail && ignoresChange(ctx, p)) detail = undefined;
    ctx.status.set(p, detail ? "changed" : "same");
    if (detail) ctx.why.set(p, { offset: detail.offset, instruction: "", detail: detail.text });
  }
  markUsersOfChangedRodata(ctx);
}

function compareData(ctx: DiffContext, o: Unit, p: Unit): { offset: number; text: string } | undefined {
  const lenO = o.end - o.start;
  const lenP = p.end - p.start;
  if (lenO !== lenP) return { offset: 0, text: `size ${lenO} -> ${lenP}` };
  if (o.section.isNobits !== p.section.isNobits)
    return { offset: 0, text: "initialized <-> zero-initialized" };
  if (!p.section.isNobits) {
    const a = o.section.data.subarray(o.start, o.end);
    const b = p.section.data.subarray(p.start, p.end);
    if (!bytesEqual(a, b)) {
      let i = 0;
      while (a[i] === b[i]) i++;
      return { offset: i, text: `contents differ at +0x${i.toString(16)}` };
    }
  }
  const ro = ctx.relocsIn(o.section, o.start, o.end);
  const rp = ctx.relocsIn(p.section, p.start, p.end);
  for (let i = 0; i < Math.max(ro.length, rp.length); i++) {
    const a = ro[i];
    const b = rp[i];
    if (
      !a ||
      !b ||
      a.offset - o.start !== b.offset - p.start ||
      !sameRelocTarget(ctx, o.section, a, p.section, b)
    ) {
      const at = (a ?? b)!.offset - (a ? o.start : p.start);
      return { offset: at, text: `pointer at +0x${at.toString(16)} differs` };
    }
  }
  return undefined;
}

function markUsersOfChangedRodata(ctx: DiffContext): void {
  const changedRodata = new Set(
    ctx.patched.objects.filter(
      (u) => ctx.status.get(u) === "changed" && ctx.patched.info.get(u.section)?.kind === "rodata",
    ),
  );
  if (changedRodata.size === 0) return;
  for (const f of ctx.patched.functions) {
    if (ctx.status.get(f) !== "same") continue;
    for (const r of ctx.relocsIn(f.section, f.start, f.end)) {
      const t = resolveRelocTarget(ctx.patched, f.section, r);
      if (t.kind === "unit" && changedRodata.has(t.unit)) {
        if (ignoresChange(ctx, f)) break;
        ctx.status.set(f, "changed");
        ctx.why.set(f, {
          offset: r.offset - Number(f.sym.value),
          instruction: "",
          detail: `uses read-only data ${t.unit.sym.name}, which changed`,
        });
        break;
      }
    }
  }
}
