/**
 * How the output refers to something it does not include: by the original name when an ordinary
 * relocation can reach it (exported, or defined by the patch module itself), otherwise as
 * `.klp.sym.<target>.<name>,<sympos>` (src/klp/format.ts), which module generation turns into a
 * klp relocation.
 */
import type { ElfSymbol } from "../elf/index.js";
import { klpSymbolName } from "../klp/format.js";
import type { DiffContext } from "./context.js";
import { DiffError, isDiffError } from "./diff-error.js";
import { TargetSymbols } from "./target-symbols.js";

export interface ExternalName {
  /** The output symbol name: `name` or `.klp.sym.<target>.<name>,<sympos>`. */
  outName: string;
  /** The symbol's name in the running kernel. */
  name: string;
  klp: boolean;
  sympos: number;
}

const defaultSymbols = new WeakMap<DiffContext, TargetSymbols>();

/** The target's symbols: --symbols, or else the original object's own table. */
export function targetSymbols(ctx: DiffContext): TargetSymbols {
  if (ctx.options.symbols) return ctx.options.symbols;
  let t = defaultSymbols.get(ctx);
  if (!t) {
    t = TargetSymbols.fromElf(ctx.orig.file);
    defaultSymbols.set(ctx, t);
  }
  return t;
}

/** The name the output uses for `sym` (of the patched object), which it does not include. */
export function externalName(ctx: DiffContext, sym: ElfSymbol): ExternalName {
  const exports = ctx.options.exports;
  if (sym.isUndefined) return undefinedName(ctx, sym.name);
  const orig = ctx.twinOf(sym) ?? sym;
  const name = orig.name;
  if (!orig.isLocal && exports?.reachable(name, ctx.target))
    return { outName: name, name, klp: false, sympos: 0 };
  if (!orig.isLocal && !exports) return { outName: name, name, klp: false, sympos: 0 };
  return klp(ctx, name, orig.isLocal);
}

/** The name the output uses for `name`, a symbol the patched object does not define. */
export function undefinedName(ctx: DiffContext, name: string): ExternalName {
  const exports = ctx.options.exports;
  if (!exports || exports.reachable(name, ctx.target)) return { outName: name, name, klp: false, sympos: 0 };
  const symbols = ctx.options.symbols;
  if (symbols?.has(name)) return klp(ctx, name, false);
  ctx.warn(`${name} is neither exported nor in the target's symbols: taken as defined by the patch module`);
  return { outName: name, name, klp: false, sympos: 0 };
}

function klp(ctx: DiffContext, name: string, local: boolean): ExternalName {
  try {
    const r = targetSymbols(ctx).resolve(name, local, ctx.orig);
    return {
      outName: klpSymbolName(ctx.target, r.name, r.sympos),
      name: r.name,
      klp: true,
      sympos: r.sympos,
    };
  } catch (e) {
    if (isDiffError(e) && !e.location.file) {
      throw new DiffError(e.code, e.message, { ...e.location, file: ctx.patched.file.path }, { cause: e });
    }
    throw e;
  }
}
