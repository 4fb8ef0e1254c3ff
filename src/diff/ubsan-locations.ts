/**
 * UBSAN check data that differs only in where the check is in the source: every handler's data
 * (gcc's .Lubsan_data, clang's .L__unnamed_N) starts with struct source_location { const char
 * *file_name; u32 line; u32 column; }, so a line inserted above moves it without changing what the
 * check does (only what its report would print): the same kind of change as a moved __LINE__.
 */
import type { ElfReloc, ElfSection } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import { isAnonymousData } from "./policy.js";
import { resolveRelocTarget, sameRelocTarget } from "./reloc-target.js";

/** struct source_location's line and column, after the file name pointer. */
const LINE_COLUMN = { start: 8, end: 16 };

/**
 * True when `ro` and `rp` refer to the start of twin anonymous data sections that hold the same
 * bytes and references outside a leading source location's line and column, and whose file name
 * is the same string.
 */
export function sameButSourceLocation(
  ctx: DiffContext,
  baseO: ElfSection,
  ro: ElfReloc,
  baseP: ElfSection,
  rp: ElfReloc,
): boolean {
  if (ro.type !== rp.type) return false;
  const to = resolveRelocTarget(ctx.orig, baseO, ro);
  const tp = resolveRelocTarget(ctx.patched, baseP, rp);
  if (to.kind !== "section" || tp.kind !== "section" || to.addend !== tp.addend) return false;
  const so = to.section;
  const sp = tp.section;
  if (!isAnonymousData(so.name) || ctx.sectionTwins.get(so) !== sp) return false;
  if (so.size !== sp.size || so.size < LINE_COLUMN.end) return false;
  for (let i = 0; i < so.data.length; i++) {
    if (i >= LINE_COLUMN.start && i < LINE_COLUMN.end) continue;
    if (so.data[i] !== sp.data[i]) return false;
  }
  const inO = ctx.relocsOf(so);
  const inP = ctx.relocsOf(sp);
  if (inO.length !== inP.length || inO.length === 0) return false;
  // The first field names the source file: a string.
  const file = inO[0]!;
  if (file.offset !== 0 || resolveRelocTarget(ctx.orig, so, file).kind !== "string") return false;
  return inO.every(
    (x, j) =>
      x.offset === inP[j]!.offset &&
      (x.offset < LINE_COLUMN.start || x.offset >= LINE_COLUMN.end) &&
      sameRelocTarget(ctx, so, x, sp, inP[j]!),
  );
}
