/**
 * OutputBuilder: the object being emitted and the maps from the patched object into it. A
 * patched unit is placed into an output section (its own section copied whole, or its bytes cut
 * out of a shared one); relocations are mapped through those placements, and whatever is not
 * placed becomes an undefined global named by externalName(). Jumps into code-piece sections
 * (.altinstr_aux) take their pieces along (piece-copier.ts).
 */
import {
  createElf,
  type ElfFile,
  type ElfReloc,
  type ElfSection,
  type ElfSymbol,
  SHF_EXECINSTR,
  SHF_GROUP,
  SHN_ABS,
  SHT_PROGBITS,
  STB_GLOBAL,
  STT_FILE,
  STT_NOTYPE,
} from "../elf/index.js";
import type { DiffContext } from "./context.js";
import { baseName } from "./correlate-symbols.js";
import { DescriptorCopier } from "./descriptor-copier.js";
import { DiffError, isDiffError } from "./diff-error.js";
import { type ExternalName, externalName, undefinedName } from "./external-symbols.js";
import type { Unit } from "./object-index.js";
import { CodePieceCopier } from "./piece-copier.js";
import { isAnonymousData, isFreshStatic } from "./policy.js";
import { resolveRelocTarget } from "./reloc-target.js";

export interface Placement {
  section: ElfSection;
  /** Output offset = patched offset - shift. */
  shift: number;
  sym: ElfSymbol;
}

/** A reference from the output to something outside it. */
export interface ExternalRef extends ExternalName {
  /** The output symbol. */
  symbol: ElfSymbol;
}

export class OutputBuilder {
  readonly ctx: DiffContext;
  readonly out: ElfFile;
  readonly placed = new Map<Unit, Placement>();
  /** Patched sections copied whole (strings, anonymous rodata) → their copies. */
  readonly copies = new Map<ElfSection, ElfSection>();
  readonly externals = new Map<string, ExternalRef>();
  readonly #grown = new Map<ElfSection, ElfSection>();
  /** The pieces of .altinstr_aux the included code jumps into. */
  readonly pieces = new CodePieceCopier(this);
  /** The descriptors (dynamic debug) the included code uses. */
  readonly descriptors = new DescriptorCopier(this);

  constructor(ctx: DiffContext) {
    this.ctx = ctx;
    this.out = createElf({}, undefined);
    const fileSym = ctx.patched.file.symbols.find((s) => s.type === STT_FILE);
    if (fileSym) this.out.addSymbol({ name: fileSym.name, type: STT_FILE, shndx: SHN_ABS });
    this.out.addSection({ name: ".note.GNU-stack", type: SHT_PROGBITS });
  }

  /** Places `unit` into the output: its section copied whole, or its bytes in a section of its own. */
  place(unit: Unit): Placement {
    const have = this.placed.get(unit);
    if (have) return have;
    const src = unit.section;
    const text = (src.flags & SHF_EXECINSTR) !== 0n;
    const name = unit.whole ? src.name : text ? `.text.${unit.sym.name}` : `${src.name}.${unit.sym.name}`;
    const section = this.out.addSection({
      name,
      type: src.type,
      flags: src.flags & ~SHF_GROUP,
      addralign: src.addralign,
      entsize: src.entsize,
      data: src.isNobits ? undefined : src.data.slice(unit.start, unit.end),
      size: src.isNobits ? unit.end - unit.start : undefined,
    });
    const sym = this.out.addSymbol({
      name: unit.sym.name,
      type: unit.sym.type,
      bind: unit.sym.bind,
      other: unit.sym.other,
      section,
      value: unit.sym.value - BigInt(unit.start),
      size: unit.sym.size,
    });
    const placement = { section, shift: unit.start, sym };
    this.placed.set(unit, placement);
    return placement;
  }

  /**
   * The output section that entries or pieces of `src` are appended to: made once, empty, with
   * src's name and attributes (the code-piece and descriptor copiers grow it).
   */
  grownSection(src: ElfSection): ElfSection {
    let out = this.#grown.get(src);
    if (!out) {
      out = this.out.addSection({
        name: src.name,
        type: src.type,
        flags: src.flags & ~SHF_GROUP,
        addralign: src.addralign,
        entsize: src.entsize,
        data: new Uint8Array(0),
      });
      this.out.ensureSectionSymbol(out);
      this.#grown.set(src, out);
    }
    return out;
  }

  /** Copies a whole patched section (string literals, anonymous read-only data). */
  copySection(src: ElfSection): ElfSection {
    let copy = this.copies.get(src);
    if (copy) return copy;
    copy = this.out.addSection({
      name: src.name,
      type: src.type,
      flags: src.flags & ~SHF_GROUP,
      addralign: src.addralign,
      entsize: src.entsize,
      data: src.isNobits ? undefined : src.data.slice(),
      size: src.isNobits ? src.size : undefined,
    });
    this.out.ensureSectionSymbol(copy);
    this.copies.set(src, copy);
    for (const r of this.ctx.relocsOf(src)) this.addReloc(copy, src, r, r.offset, "section");
    return copy;
  }

  /**
   * Adds to `outBase` (at `offset`) the mapping of the patched relocation `r` of `base`. `owner`
   * names the referring code or table for errors. Returns the external reference it made, if any.
   */
  addReloc(
    outBase: ElfSection,
    base: ElfSection,
    r: ElfReloc,
    offset: number,
    owner: string,
  ): ExternalRef | undefined {
    const { symbol, addend, external } = this.mapTarget(base, r, owner);
    this.out.addReloc(outBase, { offset, type: r.type, symbol, addend });
    return external;
  }

  mapTarget(
    base: ElfSection,
    r: ElfReloc,
    owner: string,
  ): { symbol: ElfSymbol; addend: bigint; external?: ExternalRef } {
    const { ctx } = this;
    const sym = r.symbol;
    if (sym.isSectionSymbol) {
      const copy = this.copies.get(sym.section!);
      if (copy) return { symbol: copy.sectionSymbol!, addend: r.addend };
    }
    const t = resolveRelocTarget(ctx.patched, base, r);
    switch (t.kind) {
      case "unit": {
        const p = this.placed.get(t.unit);
        if (p) {
          if (sym.isSectionSymbol)
            return { symbol: this.out.ensureSectionSymbol(p.section), addend: r.addend - BigInt(p.shift) };
          return { symbol: p.sym, addend: t.addend };
        }
        const copy = this.freshStaticCopy(t.unit, t.addend);
        if (copy) return copy;
        const external = this.external(t.unit.sym);
        return { symbol: external.symbol, addend: t.addend, external };
      }
      case "string":
      case "section": {
        const kind = ctx.patched.info.get(t.section)?.kind;
        if (kind !== "string" && kind !== "rodata" && !isAnonymousData(t.section.name)) {
          throw new DiffError(
            "DIFF_UNSUPPORTED_SECTION",
            `Cannot refer to ${sym.displayName} from ${owner}: it is in ${t.section.name}, which holds no function or object to name`,
            { file: ctx.patched.file.path, section: t.section.name, symbol: owner },
          );
        }
        const copy = this.copySection(t.section);
        return { symbol: copy.sectionSymbol!, addend: t.addend };
      }
      case "symbol": {
        const external = this.external(sym);
        return { symbol: external.symbol, addend: r.addend, external };
      }
      case "piece":
        return this.pieces.map(t, owner);
      case "entry":
        return this.descriptors.map(t, owner);
    }
  }

  /**
   * A static local that needs no identity (a `__func__` string, a once-flag: policy.ts
   * isFreshStatic) which a copied table (a dynamic debug descriptor) names, when the target's
   * symbols cannot tell which copy is ours (or have none of that name): the patch takes its own
   * copy of the section holding it, as includeDependencies does for code's references.
   */
  private freshStaticCopy(unit: Unit, addend: bigint): { symbol: ElfSymbol; addend: bigint } | undefined {
    const orig = this.ctx.twinOf(unit.sym);
    if (!orig?.isLocal || unit.sym.isFunction || !isFreshStatic(baseName(orig.name))) return undefined;
    try {
      externalName(this.ctx, unit.sym);
      return undefined;
    } catch (e) {
      if (!isDiffError(e) || (e.code !== "DIFF_SYMPOS_AMBIGUOUS" && e.code !== "DIFF_SYMBOL_NOT_IN_TARGET"))
        throw e;
    }
    const copy = this.copySection(unit.section);
    this.ctx.copied.set(
      unit,
      `the target's symbols cannot tell which ${orig.name} is ours: a static local that needs no identity with the running kernel's (${baseName(orig.name)}), so the patch has its own copy`,
    );
    return { symbol: copy.sectionSymbol!, addend: unit.sym.value + addend };
  }

  external(sym: ElfSymbol | string): ExternalRef {
    const name = typeof sym === "string" ? undefinedName(this.ctx, sym) : externalName(this.ctx, sym);
    let ref = this.externals.get(name.outName);
    if (!ref) {
      const symbol = this.out.addSymbol({ name: name.outName, type: STT_NOTYPE, bind: STB_GLOBAL });
      ref = { ...name, symbol };
      this.externals.set(name.outName, ref);
    }
    return ref;
  }
}
