/**
 * markChangedEntries(): a function whose bytes and relocations are the same can still change
 * through the special-section entries that describe it: an alternative whose only change is its
 * CPU feature bit (or its lengths) patches the same code differently at load. For the kinds that
 * opt in (SpecialKind.compare), each function's entries are compared field by field outside the
 * relocated fields (whose targets the function's own relocations already cover), at the same
 * offsets in the function; a difference makes the function changed. An entry's payload (an
 * alternative's replacement instructions in .altinstr_replacement) is compared too: its bytes and
 * the targets of its relocations, wherever the piece sits in its section, so that a patch that
 * changes only what an alternative puts in place is not missed.
 */
import type { ElfSection } from "../elf/index.js";
import { relocWidth } from "../x86/reloc-width.js";
import type { DiffContext } from "./context.js";
import { ignoresChange } from "./directives.js";
import type { ObjectIndex, Unit } from "./object-index.js";
import { PayloadPieces } from "./payload-pieces.js";
import { bytesEqual, resolveRelocTarget, sameRelocTarget } from "./reloc-target.js";
import { checkEntryLayout } from "./special/entry-layout.js";
import { entrySizeOf, type SpecialKind } from "./special/special-kind.js";
import { SPECIAL_KINDS } from "./special/table.js";

export function markChangedEntries(ctx: DiffContext): void {
  for (const kind of SPECIAL_KINDS.filter((k) => k.compare)) {
    const size = entrySizeOf(kind.size, ctx.options.entrySizes ?? {});
    const secO = ctx.orig.file.findSection(kind.name);
    const secP = ctx.patched.file.findSection(kind.name);
    if (size === undefined || !secO || !secP) continue;
    for (const [file, sec] of [
      [ctx.orig.file.path, secO],
      [ctx.patched.file.path, secP],
    ] as const)
      checkEntryLayout({ file, sec, relocs: ctx.relocsOf(sec), size, anchor: kind.anchor });
    markChangedEntriesOf(ctx, kind, { size, secO, secP });
  }
}

/** Marks each unchanged function whose entries of `kind` (or their payload) changed. */
function markChangedEntriesOf(
  ctx: DiffContext,
  kind: SpecialKind,
  sections: { size: number; secO: ElfSection; secP: ElfSection },
): void {
  const { size, secO, secP } = sections;
  const entriesO = entriesByFunction(ctx, ctx.orig, secO, kind, size);
  const entriesP = entriesByFunction(ctx, ctx.patched, secP, kind, size);
  const payloadO = kind.payload ? ctx.orig.file.findSection(kind.payload) : undefined;
  const payloadP = kind.payload ? ctx.patched.file.findSection(kind.payload) : undefined;
  const pieces =
    payloadO && payloadP
      ? {
          o: new PayloadPieces(ctx, ctx.orig.file, payloadO),
          p: new PayloadPieces(ctx, ctx.patched.file, payloadP),
        }
      : undefined;
  const payloadDiffers = pieces
    ? (eO: Entry, eP: Entry) => !samePayload(ctx, secO, eO, secP, eP, size, pieces.o, pieces.p)
    : undefined;
  for (const [p, listP] of entriesP) {
    if (ctx.status.get(p) !== "same") continue;
    const twin = ctx.twinOf(p.sym);
    const o = twin && ctx.orig.unitOf.get(twin);
    const change = firstChangedEntry((o && entriesO.get(o)) ?? [], listP, payloadDiffers);
    if (!change || ignoresChange(ctx, p)) continue;
    const what = change.payload ? `entry's ${kind.payload}` : "entry";
    ctx.status.set(p, "changed");
    ctx.why.set(p, {
      offset: change.entry.offset,
      instruction: "",
      detail: `its ${kind.name} ${what} at +0x${change.entry.offset.toString(16)} changed (${kind.why})`,
    });
  }
}

/**
 * The first entry of a function that differs between the original's list and the patched one's
 * (an entry added, removed or changed; else, when `payloadDiffers` is given, one whose payload
 * changed), or undefined when none does.
 */
function firstChangedEntry(
  listO: readonly Entry[],
  listP: readonly Entry[],
  payloadDiffers: ((eO: Entry, eP: Entry) => boolean) | undefined,
): { entry: Entry; payload: boolean } | undefined {
  const at = listP.findIndex((e, i) => e.key !== listO[i]?.key);
  if (at >= 0 || listO.length !== listP.length) {
    return { entry: listP[at < 0 ? listO.length : at] ?? listP[0]!, payload: false };
  }
  if (!payloadDiffers) return undefined;
  const changed = listP.findIndex((e, i) => payloadDiffers(listO[i]!, e));
  return changed < 0 ? undefined : { entry: listP[changed]!, payload: true };
}

interface Entry {
  /** Where in the function the entry's anchor points. */
  offset: number;
  /** The entry's first byte in its section. */
  start: number;
  /** The offset and the entry's bytes outside relocated fields. */
  key: string;
}

/**
 * True when the pieces of payload the two entries point at hold the same bytes, with relocations
 * at the same places to the same targets (a replacement's call, or its jump back into the function).
 */
function samePayload(
  ctx: DiffContext,
  secO: ElfSection,
  eo: Entry,
  secP: ElfSection,
  ep: Entry,
  size: number,
  po: PayloadPieces,
  pp: PayloadPieces,
): boolean {
  const into = (sec: ElfSection, e: Entry, pieces: PayloadPieces) =>
    ctx.relocsIn(sec, e.start, e.start + size).filter((r) => r.symbol.section === pieces.section);
  const ro = into(secO, eo, po);
  const rp = into(secP, ep, pp);
  if (ro.length !== rp.length) return false;
  return ro.every((r, i) => {
    const { start: startO, end: endO } = po.pieceOf(r, ctx.orig.file.path);
    const { start: startP, end: endP } = pp.pieceOf(rp[i]!, ctx.patched.file.path);
    if (!bytesEqual(po.section.data.subarray(startO, endO), pp.section.data.subarray(startP, endP)))
      return false;
    const inO = ctx.relocsIn(po.section, startO, endO);
    const inP = ctx.relocsIn(pp.section, startP, endP);
    return (
      inO.length === inP.length &&
      inO.every(
        (x, j) =>
          x.offset - startO === inP[j]!.offset - startP &&
          sameRelocTarget(ctx, po.section, x, pp.section, inP[j]!),
      )
    );
  });
}

function entriesByFunction(
  ctx: DiffContext,
  index: ObjectIndex,
  sec: ElfSection,
  kind: SpecialKind,
  size: number,
): Map<Unit, Entry[]> {
  const byUnit = new Map<Unit, Entry[]>();
  const relocs = ctx.relocsOf(sec);
  for (const r of relocs) {
    if (r.offset % size !== kind.anchor) continue;
    const t = resolveRelocTarget(index, sec, r);
    if (t.kind !== "unit" || !t.unit.sym.isFunction) continue;
    const start = r.offset - kind.anchor;
    // A copy (never the input's bytes, which may be a Buffer), relocated fields zeroed.
    const bytes = new Uint8Array(sec.data.subarray(start, start + size));
    for (const f of ctx.relocsIn(sec, start, start + size))
      bytes.fill(0, f.offset - start, Math.min(bytes.length, f.offset - start + relocWidth(f.type)));
    const offset = Number(t.addend);
    const list = byUnit.get(t.unit) ?? [];
    list.push({ offset, start, key: `${offset}:${Buffer.from(bytes).toString("hex")}` });
    byUnit.set(t.unit, list);
  }
  for (const list of byUnit.values()) list.sort((a, b) => a.offset - b.offset || a.key.localeCompare(b.key));
  return byUnit;
}
