/**
 * cloneSpecialSections(): for every special section of the patched object (special/table.ts),
 * keep exactly the entries whose anchor relocation lands in included code, with their payload
 * (alternative replacements) and parallel entries (ORC), relocations mapped into the output.
 * Entries the module loader reads before klp relocations are applied must not need one (a module
 * target's tracepoint and pr_debug sites are left at their default: module-tracepoint-sites.ts).
 */
import {
  type ElfReloc,
  type ElfSection,
  R_X86_64_PC32,
  SHF_EXECINSTR,
  SHF_GROUP,
  SHF_LINK_ORDER,
} from "../elf/index.js";
import { findCodePiece } from "./code-pieces.js";
import type { DiffContext } from "./context.js";
import { DiffError } from "./diff-error.js";
import { silenceModuleTracepoints } from "./module-tracepoint-sites.js";
import { findUnitAt, type Unit } from "./object-index.js";
import type { OutputBuilder } from "./output-builder.js";
import { PayloadPieces } from "./payload-pieces.js";
import { checkEntryLayout } from "./special/entry-layout.js";
import { rewriteRuntimePtrSite, runtimeConstVariable } from "./special/runtime-const.js";
import { entrySizeOf, type SpecialKind } from "./special/special-kind.js";

export function cloneSpecialSections(ctx: DiffContext, b: OutputBuilder): void {
  for (const sec of ctx.patched.file.sections) {
    const info = ctx.patched.info.get(sec);
    if (info?.kind !== "special" || !info.special) continue;
    cloneEntries(ctx, b, sec, info.special);
  }
}

interface Kept {
  index: number;
  unit: Unit;
  /** The entry's anchor relocation. */
  anchor: ElfReloc;
}

function cloneEntries(ctx: DiffContext, b: OutputBuilder, sec: ElfSection, kind: SpecialKind): void {
  const file = ctx.patched.file.path;
  const relocs = ctx.relocsOf(sec);
  if (relocs.length === 0) return;
  // Which entries anchor in included code?
  const anchored = (r: ElfReloc): Unit | undefined => {
    let t: Unit | undefined;
    const inPiece = r.symbol.section && ctx.patched.info.get(r.symbol.section)?.kind === "pieces";
    if (inPiece) return pieceOwner(ctx, b, r);
    if (r.symbol.isSectionSymbol) {
      const at = Number(r.addend);
      t = findUnitAt(ctx.patched, r.symbol.section!, at);
      // An entry at the very end of a function's section (ORC's terminator) belongs to it too.
      const before = t ?? (at > 0 ? findUnitAt(ctx.patched, r.symbol.section!, at - 1) : undefined);
      if (!t && before?.whole && before.end === at) t = before;
    } else t = ctx.patched.unitOf.get(r.symbol);
    return t && b.placed.has(t) && t.sym.isFunction ? t : undefined;
  };
  const size = entrySizeOf(kind.size, ctx.options.entrySizes ?? {});
  if (size === undefined) {
    const needed = relocs.find((r) => anchored(r));
    if (!needed) return;
    throw new DiffError(
      "DIFF_ENTRY_SIZE_UNKNOWN",
      `Cannot cut ${sec.name} into entries: the size of its entries (${String(kind.size)}) is not known; pass --entry-sizes ${String(kind.size)}=N or the kernel tree`,
      { file, section: sec.name },
    );
  }
  checkEntryLayout({ file, sec, relocs, size, anchor: kind.anchor });
  let kept: Kept[] = [];
  for (const r of relocs) {
    if (r.offset % size !== kind.anchor) continue;
    const unit = anchored(r);
    if (unit) kept.push({ index: (r.offset - kind.anchor) / size, unit, anchor: r });
  }
  if (kind.loadTime) kept = silenceModuleTracepoints(ctx, b, sec, size, kept);
  if (kept.length === 0) return;
  if (kind.refuse) {
    const u = kept[0]!.unit;
    throw new DiffError("DIFF_UNSUPPORTED_SECTION", `Cannot patch ${u.sym.name}: it ${kind.refuse}`, {
      file,
      section: sec.name,
      symbol: u.sym.name,
    });
  }
  if (kind.rewrite) {
    for (const k of kept) rewriteRuntimePtr(ctx, b, sec, k);
    return;
  }
  const out = b.out.addSection({
    name: sec.name,
    type: sec.type,
    flags: sec.flags & ~SHF_GROUP,
    addralign: sec.addralign,
    entsize: sec.entsize,
    data: new Uint8Array(kept.length * size),
  });
  if (sec.flags & SHF_LINK_ORDER) out.link = b.placed.get(kept[0]!.unit)!.section;
  const payload = kind.payload ? new PayloadCopier(ctx, b, kind.payload) : undefined;
  kept.forEach((k, i) => {
    out.data.set(sec.data.subarray(k.index * size, (k.index + 1) * size), i * size);
    for (const r of ctx.relocsIn(sec, k.index * size, (k.index + 1) * size)) {
      const at = i * size + (r.offset - k.index * size);
      if (payload && r.symbol.section?.name === kind.payload) {
        payload.addReloc(out, r, at);
        continue;
      }
      const ext = b.addReloc(out, sec, r, at, k.unit.sym.name);
      if (ext?.klp && kind.loadTime) checkLoadTimeKlp(ctx, sec, kind, k.unit, ext.name);
    }
  });
  if (kind.parallel) cloneParallel(ctx, b, kind, kept);
}

/**
 * The included function that carries the code piece `r` (an entry's anchor) lands in: the piece
 * was copied with it (piece-copier.ts), so its entry (a refcount_t ud2's __ex_table entry, a
 * lock prefix's .smp_locks entry) goes along; undefined when no included code took the piece.
 */
function pieceOwner(ctx: DiffContext, b: OutputBuilder, r: ElfReloc): Unit | undefined {
  const piece = findCodePiece(r.symbol.section!, Number(r.addend + r.symbol.value));
  const owner = piece && b.pieces.owners.get(piece);
  if (!owner) return undefined;
  return ctx.patched.file
    .findSymbols(owner)
    .map((s) => ctx.patched.unitOf.get(s))
    .find((u) => u && b.placed.has(u) && u.sym.isFunction);
}

/**
 * An entry the module loader reads while the patch module loads (its key, its target) may use a
 * klp relocation only when that relocation is applied before: load_module() applies the
 * `.klp.rela.vmlinux.*` sections in apply_relocations() (klp_apply_section_relocs() with no
 * object name), before module_finalize(), dynamic_debug_setup(), ftrace_module_init() and the
 * MODULE_STATE_COMING notifiers (jump_label_add_module(), static_call_add_module(), tracepoints)
 * run: 6.1 and 6.12 alike (livepatch has done so since 5.8). A symbol of a module is resolved only
 * by klp_init_object_loaded() when that module is there, after all of them: refused.
 */
function checkLoadTimeKlp(
  ctx: DiffContext,
  sec: ElfSection,
  kind: SpecialKind,
  unit: Unit,
  name: string,
): void {
  if (ctx.target === "vmlinux") return;
  throw new DiffError(
    "DIFF_SPECIAL_NEEDS_KLP",
    `Cannot patch ${unit.sym.name}: its ${sec.name} entry refers to ${name} of module ${ctx.target}, which only a livepatch relocation reaches, and livepatch writes those for a module only when the module is there, after the patch module's ${sec.name} has been read (${kind.why})${sec.name === "__jump_table" ? "; test the key with static_key_enabled() in the patched code instead of a static branch" : ""}`,
    { file: ctx.patched.file.path, section: sec.name, symbol: unit.sym.name },
  );
}

/**
 * A runtime_ptr_<sym> site of included code (special/runtime-const.ts): the output's copy of the
 * instruction is made to read <sym> through a relocation, ordinary or klp, like any reference.
 */
function rewriteRuntimePtr(ctx: DiffContext, b: OutputBuilder, sec: ElfSection, k: Kept): void {
  const r = k.anchor;
  const placed = b.placed.get(k.unit)!;
  const at = Number(r.addend) + (r.symbol.isSectionSymbol ? 0 : Number(r.symbol.value)) - placed.shift;
  const variable = runtimeConstVariable(sec.name);
  const disp = rewriteRuntimePtrSite(placed.section.data, at);
  if (typeof disp === "string") {
    throw new DiffError(
      "DIFF_UNSUPPORTED_SECTION",
      `Cannot patch ${k.unit.sym.name}: its runtime constant site of ${variable} (${sec.name}) cannot be made to read ${variable}: ${disp}`,
      { file: ctx.patched.file.path, section: sec.name, symbol: k.unit.sym.name },
    );
  }
  // The variable as the object knows it (a static of its own: dentry_hashtable), else by name.
  const sym = ctx.patched.file.findSymbols(variable).find((s) => !s.isSectionSymbol && !s.isUndefined);
  if (sym) {
    const load = { offset: disp + placed.shift, type: R_X86_64_PC32, symbol: sym, addend: -4n } as ElfReloc;
    b.addReloc(placed.section, k.unit.section, load, disp, k.unit.sym.name);
  } else {
    const ext = b.external(variable);
    b.out.addReloc(placed.section, { offset: disp, type: R_X86_64_PC32, symbol: ext.symbol, addend: -4n });
  }
}

/** ORC: .orc_unwind entries at the same indexes as the kept .orc_unwind_ip ones. */
function cloneParallel(ctx: DiffContext, b: OutputBuilder, kind: SpecialKind, kept: Kept[]): void {
  const name = kind.parallel!.name;
  const src = ctx.patched.file.findSection(name);
  if (!src) return;
  const size = entrySizeOf(kind.parallel!.size, ctx.options.entrySizes ?? {});
  if (size === undefined) {
    throw new DiffError(
      "DIFF_ENTRY_SIZE_UNKNOWN",
      `Cannot cut ${name} into entries: the size of its entries (${String(kind.parallel!.size)}) is not known`,
      {
        file: ctx.patched.file.path,
        section: name,
      },
    );
  }
  const data = new Uint8Array(kept.length * size);
  kept.forEach((k, i) => {
    data.set(src.data.subarray(k.index * size, (k.index + 1) * size), i * size);
  });
  b.out.addSection({
    name,
    type: src.type,
    flags: src.flags & ~SHF_GROUP,
    addralign: src.addralign,
    entsize: src.entsize,
    data,
  });
}

/**
 * Copies pieces of a payload section (.altinstr_replacement) on demand, cut as payload-pieces.ts
 * says.
 */
class PayloadCopier {
  readonly ctx: DiffContext;
  readonly b: OutputBuilder;
  readonly src: ElfSection | undefined;
  out: ElfSection | undefined;
  readonly pieces: PayloadPieces | undefined;
  readonly copied = new Map<number, number>();

  constructor(ctx: DiffContext, b: OutputBuilder, name: string) {
    this.ctx = ctx;
    this.b = b;
    this.src = ctx.patched.file.findSection(name);
    this.pieces = this.src && new PayloadPieces(ctx, ctx.patched.file, this.src);
  }

  addReloc(outBase: ElfSection, r: ElfReloc, at: number): void {
    const src = this.src!;
    const { start, end: next } = this.pieces!.pieceOf(r, this.ctx.patched.file.path);
    let copied = this.copied.get(start);
    if (copied === undefined) {
      const out = this.section();
      copied = out.data.length;
      const grown = new Uint8Array(copied + (next - start));
      grown.set(out.data);
      grown.set(src.data.subarray(start, next), copied);
      out.data = grown;
      this.copied.set(start, copied);
      for (const pr of this.ctx.relocsIn(src, start, next)) {
        this.b.addReloc(out, src, pr, copied + (pr.offset - start), src.name);
      }
    }
    this.b.out.addReloc(outBase, {
      offset: at,
      type: r.type,
      symbol: this.b.out.ensureSectionSymbol(this.section()),
      addend: BigInt(copied),
    });
  }

  section(): ElfSection {
    if (!this.out) {
      const src = this.src!;
      this.out = this.b.out.addSection({
        name: src.name,
        type: src.type,
        flags: (src.flags & ~SHF_GROUP) | SHF_EXECINSTR,
        addralign: src.addralign,
        entsize: src.entsize,
        data: new Uint8Array(0),
      });
    }
    return this.out;
  }
}
