/**
 * Directives: what the patch author asked for with include/kpatch-ts/kpatch-macros.h, read from
 * the patched object's `.kpatch_ts.*` sections by readDirectives(). The marking phases ask it
 * whether a unit's change is to be ignored; applyDirectives() and cloneCallbacks() act on the
 * rest.
 */
import type { ElfSection } from "../elf/index.js";
import type { CallbackKind } from "../klp/format.js";
import type { DiffContext } from "./context.js";
import type { Unit } from "./object-index.js";

/** One KPATCH_*_CALLBACK: the section that holds the pointer and the function it points to. */
export interface Callback {
  /** pre_patch, post_patch, pre_unpatch or post_unpatch. */
  kind: CallbackKind;
  section: ElfSection;
  unit: Unit;
}

export const IGNORE_FUNCTION = "KPATCH_IGNORE_FUNCTION";
export const IGNORE_SECTION = "KPATCH_IGNORE_SECTION";
export const FORCE_UNSAFE = "KPATCH_FORCE_UNSAFE";

export class Directives {
  readonly callbacks: Callback[] = [];
  /** Functions named by KPATCH_IGNORE_FUNCTION (parents: a `.cold` part goes with its function). */
  readonly ignoredFunctions = new Set<Unit>();
  /** Section names given to KPATCH_IGNORE_SECTION that the patched object has. */
  readonly ignoredSections = new Set<string>();
  /** Functions named by KPATCH_FORCE_UNSAFE (parents). */
  readonly forced = new Set<Unit>();

  isCallback(unit: Unit): boolean {
    const top = unit.parent ?? unit;
    return this.callbacks.some((c) => c.unit === top);
  }

  /** Which directive makes the differ ignore `unit`'s changes, if any. */
  ignoreWhy(unit: Unit): string | undefined {
    if (this.ignoredFunctions.has(unit.parent ?? unit)) return IGNORE_FUNCTION;
    if (this.ignoredSections.has(unit.section.name)) return IGNORE_SECTION;
    return undefined;
  }

  isForced(unit: Unit): boolean {
    return this.forced.has(unit.parent ?? unit);
  }
}

/**
 * True when the change the marking phases found in `unit` is to be dropped by a directive; the
 * unit is then recorded among the ignored (the marking phase leaves it "same").
 */
export function ignoresChange(ctx: DiffContext, unit: Unit): boolean {
  const why = ctx.directives.ignoreWhy(unit);
  if (why) ctx.ignored.set(unit.sym.name, why);
  return why !== undefined;
}
