/**
 * What a relocation points to, in terms that survive a rebuild: a unit (function or data object)
 * and an offset in it, a string literal by its text, an anonymous section and offset, or an
 * external symbol by name, a piece of a code-piece section (code-pieces.ts). Relocations against
 * section symbols are resolved to the unit the target offset lands in; for PC-relative
 * relocations from code the offset is taken from the end of the instruction (decoded), since the
 * addend also counts the bytes after the field.
 */
import {
  type ElfReloc,
  type ElfSection,
  type ElfSymbol,
  R_X86_64_GOTPCRELX,
  R_X86_64_PC32,
  R_X86_64_PC64,
  R_X86_64_PLT32,
  R_X86_64_REX_GOTPCRELX,
  SHF_EXECINSTR,
} from "../elf/index.js";
import { upperBound } from "../util/binary-search.js";
import { x86Decoder } from "../x86/index.js";
import { findCodePiece, findCodePieceInsn } from "./code-pieces.js";
import type { DiffContext } from "./context.js";
import { descriptorKindOf, descriptorSize, sameDescriptor } from "./descriptors.js";
import { findUnitAt, type ObjectIndex, type Unit } from "./object-index.js";

/**
 * Offsets say where the reference lands (for PC-relative relocations from code: past the end of
 * the instruction, see pcAdjust); addends are the relocation's, made relative to what is named.
 */
export type RelocTarget =
  | {
      kind: "unit";
      unit: Unit;
      /** Relative to the unit's symbol. */
      addend: bigint;
    }
  | {
      kind: "string";
      section: ElfSection;
      /** Where the reference lands, from the section start. */
      offset: number;
      /** The NUL-terminated string there. */
      text: string;
      /** From the section start. */
      addend: bigint;
    }
  | {
      kind: "section";
      section: ElfSection;
      /** From the section start. */
      addend: bigint;
    }
  | {
      kind: "piece";
      section: ElfSection;
      /** Where the reference lands, from the section start. */
      offset: number;
      /** From the section start. */
      addend: bigint;
    }
  | {
      kind: "entry";
      section: ElfSection;
      /** The descriptor's first byte; -1 when the table cannot be cut (descriptorSize). */
      start: number;
      size: number;
      /** From the section start. */
      addend: bigint;
    }
  | {
      kind: "symbol";
      sym: ElfSymbol;
      /** The relocation's own addend. */
      addend: bigint;
    };

const PC_RELATIVE = new Set([
  R_X86_64_PC32,
  R_X86_64_PLT32,
  R_X86_64_PC64,
  R_X86_64_GOTPCRELX,
  R_X86_64_REX_GOTPCRELX,
]);

function isPcRelative(type: number): boolean {
  return PC_RELATIVE.has(type);
}

/** Bytes of a rel32 field: with nothing else known, its instruction ends right after it. */
const REL32_SIZE = 4;

/** Per code unit: the end offsets of its instructions, decoded once. */
const insnEnds = new WeakMap<Unit, Int32Array>();

/**
 * How many bytes to add to a PC-relative addend to get the target's offset: the distance from
 * the field to the end of its instruction (REL32_SIZE for most, more when an immediate follows).
 */
export function pcAdjust(index: ObjectIndex, base: ElfSection, reloc: ElfReloc): number {
  if (!isPcRelative(reloc.type)) return 0;
  const info = index.info.get(base);
  if (info?.kind === "pieces") {
    const insn = findCodePieceInsn(base, reloc.offset);
    return insn ? insn.offset + insn.length - reloc.offset : REL32_SIZE;
  }
  if (!isCode(base, info?.kind)) return 0;
  const unit = findUnitAt(index, base, reloc.offset);
  if (!unit) return REL32_SIZE;
  let ends = insnEnds.get(unit);
  if (!ends) {
    const insns = x86Decoder().decodeRange(base.data, unit.start, unit.end);
    ends = Int32Array.from(insns, (i) => i.offset + i.length);
    insnEnds.set(unit, ends);
  }
  const end = ends[upperBound(ends, reloc.offset, (e) => e)];
  return end === undefined ? REL32_SIZE : end - reloc.offset;
}

/**
 * Code: a text section, or __init code (.init.text: its references to statics renumbered by an
 * edit elsewhere must resolve to the static they name, as from any code).
 */
function isCode(base: ElfSection, kind: string | undefined): boolean {
  return kind === "text" || (kind === "init" && (base.flags & SHF_EXECINSTR) !== 0n);
}

/** Resolves `reloc` (applying to `base` of the object `index`) to what it points to. */
export function resolveRelocTarget(index: ObjectIndex, base: ElfSection, reloc: ElfReloc): RelocTarget {
  const sym = reloc.symbol;
  if (!sym.isSectionSymbol) {
    const unit = index.unitOf.get(sym);
    if (unit) return { kind: "unit", unit, addend: reloc.addend + sym.value - unit.sym.value };
    if (!sym.section) return { kind: "symbol", sym, addend: reloc.addend };
    // A label (.LC0, a NOTYPE local) in a section: the same as the section plus its value.
  }
  const sec = sym.section!;
  const kind = index.info.get(sec)?.kind;
  const addend = reloc.addend + (sym.isSectionSymbol ? 0n : sym.value);
  // The exact offset matters only to tell apart what shares the section: strings, code pieces,
  // several units (decoding the referring instruction costs the x86 decoder's start-up).
  const shared = kind === "string" || kind === "pieces" || (index.bySection.get(sec)?.length ?? 0) > 1;
  const fromCode = isCode(base, index.info.get(base)?.kind);
  const guess = fromCode && isPcRelative(reloc.type) ? 4 : 0;
  const offset = Number(addend) + (shared ? pcAdjust(index, base, reloc) : guess);
  if (kind === "string") return { kind: "string", section: sec, offset, text: stringAt(sec, offset), addend };
  if (kind === "pieces") return { kind: "piece", section: sec, offset, addend };
  if (kind === "descriptors") {
    const size = descriptorSize(sec);
    if (size === undefined) return { kind: "entry", section: sec, start: -1, size: 0, addend };
    return { kind: "entry", section: sec, start: offset - (offset % size), size, addend };
  }
  const unit = findUnitAt(index, sec, offset) ?? wholeUnit(index, sec);
  if (unit) return { kind: "unit", unit, addend: addend - unit.sym.value };
  return { kind: "section", section: sec, addend };
}

function wholeUnit(index: ObjectIndex, sec: ElfSection): Unit | undefined {
  const units = index.bySection.get(sec);
  return units?.length === 1 && units[0]!.whole ? units[0] : undefined;
}

/** The NUL-terminated string at `offset` (latin1, which keeps every byte). */
export function stringAt(sec: ElfSection, offset: number): string {
  const d = sec.data;
  if (offset < 0 || offset > d.length) return `\u0000<out of section at ${offset}>`;
  let end = offset;
  while (end < d.length && d[end] !== 0) end++;
  return Buffer.from(d.buffer, d.byteOffset + offset, end - offset).toString("latin1");
}

/**
 * True when the original relocation `ro` (in `baseO`) and the patched `rp` (in `baseP`) point to
 * the same thing: twin units at the same offset, the same string text, twin anonymous sections
 * with the same bytes, or the same external symbol.
 */
export function sameRelocTarget(
  ctx: DiffContext,
  baseO: ElfSection,
  ro: ElfReloc,
  baseP: ElfSection,
  rp: ElfReloc,
): boolean {
  if (ro.type !== rp.type) return false;
  // Fast path: the same named symbol (or twin sections with identical bytes) and the same addend.
  const so = ro.symbol;
  const sp = rp.symbol;
  if (ro.addend === rp.addend) {
    if (!so.isSectionSymbol && !sp.isSectionSymbol) {
      if (ctx.twinOf(so) === sp) return true;
      if (so.isUndefined && sp.isUndefined) return so.name === sp.name;
    } else if (
      so.isSectionSymbol &&
      sp.isSectionSymbol &&
      ctx.sectionTwins.get(so.section!) === sp.section &&
      ctx.orig.info.get(so.section!)?.kind !== "pieces" // the same offset may be another function's piece
    ) {
      if (ctx.sameBytes(so.section!, sp.section!)) return true;
    }
  }
  const to = resolveRelocTarget(ctx.orig, baseO, ro);
  const tp = resolveRelocTarget(ctx.patched, baseP, rp);
  return sameTarget(ctx, to, tp);
}

function sameTarget(ctx: DiffContext, to: RelocTarget, tp: RelocTarget): boolean {
  switch (to.kind) {
    case "unit":
      return tp.kind === "unit" && ctx.twinOf(to.unit.sym) === tp.unit.sym && to.addend === tp.addend;
    case "string":
      return (
        tp.kind === "string" &&
        to.text === tp.text &&
        to.addend - BigInt(to.offset) === tp.addend - BigInt(tp.offset)
      );
    case "section":
      return (
        tp.kind === "section" &&
        ctx.sectionTwins.get(to.section) === tp.section &&
        to.addend === tp.addend &&
        ctx.sameBytes(to.section, tp.section)
      );
    case "symbol":
      return tp.kind === "symbol" && to.sym.name === tp.sym.name && to.addend === tp.addend;
    case "piece":
      return tp.kind === "piece" && ctx.sectionTwins.get(to.section) === tp.section && samePiece(ctx, to, tp);
    case "entry":
      return tp.kind === "entry" && ctx.sectionTwins.get(to.section) === tp.section && sameEntry(ctx, to, tp);
  }
}

/** True when two references land at the same place of descriptors of the same site. */
function sameEntry(
  ctx: DiffContext,
  to: Extract<RelocTarget, { kind: "entry" }>,
  tp: Extract<RelocTarget, { kind: "entry" }>,
): boolean {
  const kind = descriptorKindOf(ctx.orig, to.section);
  if (!kind || to.start < 0 || tp.start < 0 || to.size !== tp.size) return false;
  if (to.addend - BigInt(to.start) !== tp.addend - BigInt(tp.start)) return false;
  return sameDescriptor(ctx, kind, to.section, to.start, tp.section, tp.start, to.size, (o, ro, p, rp) =>
    sameRelocTarget(ctx, o, ro, p, rp),
  );
}

/**
 * True when two references into code-piece sections land at the same place of pieces that do
 * the same: the same bytes and relocations to the same targets (jumps back into the function at
 * the same offsets), wherever the pieces sit in their sections. A piece that cannot be cut is
 * never the same.
 */
function samePiece(
  ctx: DiffContext,
  to: Extract<RelocTarget, { kind: "piece" }>,
  tp: Extract<RelocTarget, { kind: "piece" }>,
): boolean {
  const po = findCodePiece(to.section, to.offset);
  const pp = findCodePiece(tp.section, tp.offset);
  if (!po || !pp || po.problem || pp.problem) return false;
  if (to.offset - po.start !== tp.offset - pp.start) return false;
  if (to.addend - BigInt(to.offset) !== tp.addend - BigInt(tp.offset)) return false;
  const bo = to.section.data.subarray(po.start, po.end);
  const bp = tp.section.data.subarray(pp.start, pp.end);
  if (!bytesEqual(bo, bp) || po.relocs.length !== pp.relocs.length) return false;
  return po.relocs.every((ro, i) => {
    const rp = pp.relocs[i]!;
    return (
      ro.offset - po.start === rp.offset - pp.start && sameRelocTarget(ctx, to.section, ro, tp.section, rp)
    );
  });
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Short text for a target, for reports: `name+0x10`, `"string"`, `.rodata.cst16+0x8`. */
export function describeTarget(t: RelocTarget): string {
  const plus = (a: bigint) => (a === 0n ? "" : a > 0n ? `+0x${a.toString(16)}` : `-0x${(-a).toString(16)}`);
  switch (t.kind) {
    case "unit":
      return `${t.unit.sym.name}${plus(t.addend)}`;
    case "string":
      return JSON.stringify(t.text.length > 40 ? `${t.text.slice(0, 40)}...` : t.text);
    case "section":
      return `${t.section.name}${plus(t.addend)}`;
    case "symbol":
      return `${t.sym.name}${plus(t.addend)}`;
    case "piece":
      return `${t.section.name}${plus(BigInt(t.offset))}`;
    case "entry":
      return `${t.section.name}${plus(t.addend)}`;
  }
}
