/**
 * cloneIncluded(): place every included unit and section into the output, then copy their
 * relocations, mapped through the placements (references to what is not included become
 * undefined globals: see OutputBuilder.external()).
 */
import type { DiffContext } from "./context.js";
import type { Unit } from "./object-index.js";
import type { OutputBuilder } from "./output-builder.js";

export function cloneIncluded(ctx: DiffContext, b: OutputBuilder): void {
  const units = [...ctx.included].sort(byPosition);
  for (const u of units) b.place(u);
  for (const sec of [...ctx.includedSections].sort((x, y) => x.index - y.index)) b.copySection(sec);
  for (const u of units) {
    const p = b.placed.get(u)!;
    for (const r of ctx.relocsIn(u.section, u.start, u.end))
      b.addReloc(p.section, u.section, r, r.offset - p.shift, u.sym.name);
  }
}

function byPosition(a: Unit, b: Unit): number {
  return a.section.index - b.section.index || a.start - b.start;
}
