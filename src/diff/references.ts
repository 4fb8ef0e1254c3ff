/**
 * Who refers to a function: every relocation of an object that resolves to it, with the section
 * kind and the referring function, and whether the reference is a direct call or jump (the
 * function is branched to) or takes its address (it may be called through a pointer).
 */
import { type ElfReloc, type ElfSection, R_X86_64_PC32, R_X86_64_PLT32 } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import { findUnitAt, type ObjectIndex, type SectionKind, type Unit } from "./object-index.js";
import { resolveRelocTarget } from "./reloc-target.js";

export interface Reference {
  section: ElfSection;
  kind: SectionKind;
  reloc: ElfReloc;
  /** The function or data object the reference sits in, if any. */
  from: Unit | undefined;
  /** True for the target of a direct call or jump from code. */
  branch: boolean;
}

/**
 * True when `r` is the target of a direct call or jump: PLT32, or (for a static callee, which the
 * assembler reaches with PC32) the rel32 of `call`/`jmp` (e8/e9) or `jcc` (0f 80-8f). No decoder
 * is needed: a PC32 field anywhere else follows a ModRM byte with mod 00 and r/m 101 (RIP-relative),
 * which is never e8/e9 nor 80-8f after 0f.
 */
export function isDirectBranch(from: Unit, r: ElfReloc): boolean {
  if (r.type === R_X86_64_PLT32) return true;
  if (r.type !== R_X86_64_PC32 || r.offset < 1) return false;
  const d = from.section.data;
  const op = d[r.offset - 1]!;
  if (op === 0xe8 || op === 0xe9) return true;
  return r.offset >= 2 && d[r.offset - 2] === 0x0f && op >= 0x80 && op <= 0x8f;
}

/** Every reference to `unit` in `index`, except from symbol tables, relocations and debug info. */
export function referencesTo(ctx: DiffContext, index: ObjectIndex, unit: Unit): Reference[] {
  const out: Reference[] = [];
  for (const section of index.file.sections) {
    const kind = index.info.get(section)?.kind ?? "unknown";
    if (!section.rela || kind === "meta" || (kind === "ignored" && !section.name.startsWith(".discard.")))
      continue;
    for (const reloc of ctx.relocsOf(section)) {
      if (reloc.symbol.section !== unit.section) continue;
      const t = resolveRelocTarget(index, section, reloc);
      if (t.kind !== "unit" || t.unit !== unit) continue;
      const from = findUnitAt(index, section, reloc.offset);
      // static_cpu_has()'s pieces jump back into the function: branches too.
      const branch =
        kind === "pieces" || (kind === "text" && from !== undefined && isDirectBranch(from, reloc));
      out.push({ section, kind, reloc, from, branch });
    }
  }
  return out;
}
