/**
 * Tracepoints and pr_debug() sites of patched code in a module target. Their static key (a
 * tracepoint's `__tracepoint_<name>.key`, a dyndbg descriptor's key) and a tracepoint's static
 * call (`__SCK__tp_func_<name>`) live in the target module, which only a livepatch relocation
 * reaches, and livepatch writes those for a module after the patch module's __jump_table and
 * .static_call_sites have been read (clone-special-sections.ts checkLoadTimeKlp). The kernel's
 * own klp-build leaves such a site at its default; so do we, and say so:
 *  - a __jump_table entry of an unlikely branch (the tracepoint's and pr_debug's, whose keys start
 *    false) is dropped and its site made the NOP a disabled key has: the tracepoint stays silent
 *    in the patched function (a report note, and the module's modinfo via kpatch-build);
 *  - a .static_call_sites entry of a tracepoint is dropped: its call keeps going through the
 *    trampoline, which is right whatever the static call points to (only slower).
 * A module-resident key that is neither stays refused.
 */
import type { ElfReloc, ElfSection } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import { baseName } from "./correlate-symbols.js";
import { externalName, undefinedName } from "./external-symbols.js";
import type { Unit } from "./object-index.js";
import type { OutputBuilder } from "./output-builder.js";
import { resolveRelocTarget } from "./reloc-target.js";

export interface SiteEntry {
  index: number;
  unit: Unit;
  anchor: ElfReloc;
}

const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const NOP2 = [0x66, 0x90];
/** The static_branch_likely() bit of a jump_entry's key (include/linux/jump_label.h JUMP_TYPE_TRUE). */
const JUMP_TYPE_TRUE = 1n;

/** What a module-resident key names: a tracepoint (its name), a pr_debug descriptor, or neither. */
function siteKind(sectionName: string, name: string, keySection: string | undefined): string | undefined {
  if (sectionName === "__jump_table") {
    if (name.startsWith("__tracepoint_")) return `tracepoint ${name.slice("__tracepoint_".length)}`;
    if (keySection === "__dyndbg" || baseName(name) === "descriptor" || name.startsWith("__UNIQUE_ID_ddebug"))
      return "pr_debug";
  }
  if (sectionName === ".static_call_sites" && name.startsWith("__SCK__tp_func_"))
    return `tracepoint ${name.slice("__SCK__tp_func_".length)}`;
  return undefined;
}

/**
 * Of the entries kept for `sec`, those whose module-resident key is a tracepoint's or a pr_debug
 * descriptor's are dropped (their sites left at the default); returns the rest.
 */
export function silenceModuleTracepoints(
  ctx: DiffContext,
  b: OutputBuilder,
  sec: ElfSection,
  size: number,
  kept: readonly SiteEntry[],
): SiteEntry[] {
  if (ctx.target === "vmlinux") return [...kept];
  return kept.filter((k) => {
    for (const r of ctx.relocsIn(sec, k.index * size, (k.index + 1) * size)) {
      if (r === k.anchor) continue;
      const key = klpKey(ctx, b, sec, r);
      if (!key) continue;
      const kind = siteKind(sec.name, key.name, key.section);
      if (!kind) return true; // refused later, naming the key
      if (sec.name === "__jump_table" && !leaveSiteDisabled(b, k, r)) return true;
      const what =
        kind === "pr_debug"
          ? `a pr_debug() in ${k.unit.sym.name} will not print`
          : `${kind} will not fire in ${k.unit.sym.name}`;
      ctx.notes.add(
        `${what} while patched (its key is in module ${ctx.target}, which the patch module cannot name at load time)`,
      );
      return false;
    }
    return true;
  });
}

/** The target name of `r` when only a klp relocation reaches it; undefined otherwise. */
function klpKey(
  ctx: DiffContext,
  b: OutputBuilder,
  sec: ElfSection,
  r: ElfReloc,
): { name: string; section: string | undefined } | undefined {
  const t = resolveRelocTarget(ctx.patched, sec, r);
  if (t.kind === "unit") {
    if (b.placed.has(t.unit)) return undefined;
    const ext = externalName(ctx, t.unit.sym);
    return ext.klp ? { name: ext.name, section: t.unit.section.name } : undefined;
  }
  if (t.kind !== "symbol") return undefined;
  const ext = t.sym.isUndefined ? undefinedName(ctx, t.sym.name) : externalName(ctx, t.sym);
  return ext.klp ? { name: ext.name, section: undefined } : undefined;
}

/**
 * Makes the site of jump entry `k` (key relocation `key`) what a disabled key leaves there: a NOP.
 * Only an unlikely branch (a key that starts false: tracepoints, pr_debug) qualifies; a jmp the
 * assembler left for objtool to NOP becomes a NOP of its length. False when it cannot be done.
 */
function leaveSiteDisabled(b: OutputBuilder, k: SiteEntry, key: ElfReloc): boolean {
  if ((key.addend & JUMP_TYPE_TRUE) !== 0n) return false;
  const placed = b.placed.get(k.unit);
  if (!placed) return false;
  const at = Number(k.anchor.addend) + (k.anchor.symbol.isSectionSymbol ? 0 : Number(k.anchor.symbol.value));
  const out = at - placed.shift;
  const data = placed.section.data;
  const is = (bytes: number[]) => bytes.every((x, i) => data[out + i] === x);
  if (is(NOP5) || is(NOP2)) return true;
  const op = data[out];
  const nop = op === 0xe9 ? NOP5 : op === 0xeb ? NOP2 : undefined;
  if (!nop) return false;
  data.set(nop, out);
  const relocs = placed.section.rela?.relocs;
  if (relocs) {
    const i = relocs.findIndex((x) => x.offset > out && x.offset < out + nop.length);
    if (i >= 0) relocs.splice(i, 1);
  }
  return true;
}
