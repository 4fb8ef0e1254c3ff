/**
 * Unchanged locals the new code refers to whose copy in the running kernel cannot be told apart
 * from others of the same name (kallsyms has no file symbols; link order did not settle it:
 * target-symbols.ts). What each kind costs:
 *  - a static local that needs no identity (a `__func__` string, a once-flag, a ratelimit state,
 *    a lockdep key: policy.ts isFreshStatic): the patch takes its own copy, as kpatch does (also
 *    when the kernel has none of that name: its build numbered it otherwise);
 *  - a function only called directly: the patch carries a copy (the same code; what the copy
 *    refers to is resolved like any reference, so its state stays the running kernel's); a copy
 *    beats a wrong sympos. One whose address the new code takes is not copied (its identity
 *    matters): the reference stays DIFF_SYMPOS_AMBIGUOUS;
 *  - any other data: refused (DIFF_DATA_AMBIGUOUS), a copy would split its state.
 * includeDependencies asks copyWhenAmbiguous() for every unchanged local it meets;
 * verifyCopiedFunctions() then checks that no included code takes a copied function's address.
 */
import type { ElfReloc } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import { baseName } from "./correlate-symbols.js";
import { DiffError, isDiffError } from "./diff-error.js";
import type { Unit } from "./object-index.js";
import { isFreshStatic } from "./policy.js";
import { isDirectBranch } from "./references.js";
import { resolveRelocTarget } from "./reloc-target.js";

const DBG_HINT =
  "kpatch-build -v with the kernel's -dbg vmlinux (linux-image-<kver>-dbg: it has file symbols) settles it";

/**
 * True when the output must carry a copy of `unit` (an unchanged local that `from` refers to
 * through `r`), recorded in ctx.copied; throws DIFF_DATA_AMBIGUOUS for data with state.
 */
export function copyWhenAmbiguous(ctx: DiffContext, from: Unit, r: ElfReloc, unit: Unit): boolean {
  if (ctx.copied.has(unit)) return true;
  const symbols = ctx.options.symbols;
  const orig = ctx.twinOf(unit.sym);
  if (!symbols || !orig?.isLocal) return false;
  const fresh = isFreshStatic(baseName(orig.name));
  try {
    symbols.resolve(orig.name, true, ctx.orig);
    return false;
  } catch (e) {
    if (!isDiffError(e)) return false;
    // A static that needs no identity may also be numbered otherwise in the kernel's build.
    const missing = e.code === "DIFF_SYMBOL_NOT_IN_TARGET" && fresh;
    if (e.code !== "DIFF_SYMPOS_AMBIGUOUS" && !missing) return false; // reported where it is named
  }
  const count = symbols.kernel.named(orig.name).length;
  if (fresh) {
    ctx.copied.set(
      unit,
      `${count === 0 ? "no symbol" : `${count} symbols`} of that name in ${symbols.path}: a static local that needs no identity with the running kernel's (${baseName(orig.name)}), so the patch has its own copy`,
    );
    return true;
  }
  if (unit.sym.isFunction) {
    if (!isDirectBranch(from, r)) return false; // its address matters: named, or refused, as it is
    ctx.copied.set(
      unit,
      `${count} symbols of that name in ${symbols.path} and link order does not tell which is ours: called directly only, so the patch carries a copy (its references resolve as any)`,
    );
    return true;
  }
  const candidates = symbols.kernel.named(orig.name);
  throw new DiffError(
    "DIFF_DATA_AMBIGUOUS",
    `Cannot patch ${from.sym.name}: it uses ${orig.name}, data with state of which ${symbols.path} has ${candidates.length} copies (${symbols.describeCandidates(candidates)}), and link order does not tell which is ours; a copy would split its state. ${DBG_HINT}`,
    { file: ctx.patched.file.path, section: from.section.name, symbol: from.sym.name },
  );
}

/** No included code may take the address of a copied function: it would not be the kernel's. */
export function verifyCopiedFunctions(ctx: DiffContext): void {
  if (![...ctx.copied.keys()].some((u) => u.sym.isFunction)) return;
  for (const u of ctx.included) {
    for (const r of ctx.relocsIn(u.section, u.start, u.end)) {
      const t = resolveRelocTarget(ctx.patched, u.section, r);
      if (t.kind !== "unit" || !t.unit.sym.isFunction || !ctx.copied.has(t.unit)) continue;
      if (u.sym.isFunction && isDirectBranch(u, r)) continue;
      throw new DiffError(
        "DIFF_SYMPOS_AMBIGUOUS",
        `Cannot tell which of the symbols named ${t.unit.sym.name} in ${ctx.options.symbols?.path ?? "the target"} is ours, and ${u.sym.name} takes its address, so a copy will not do. ${DBG_HINT}`,
        { file: ctx.patched.file.path, section: u.section.name, symbol: u.sym.name },
      );
    }
  }
}
