/**
 * Which of several same-named local symbols belongs to one object, when the symbols have no
 * STT_FILE blocks (kallsyms, a System.map): by link order. The linker places the sections of one
 * kind (.text, .text.unlikely, .data..once, .rodata...) of all objects one after another in link
 * order, so in address order the symbols of one object sit together, in one run per section
 * kind. A candidate lies in the object's run when the nearest symbol of a unique name on each
 * side of it (same-named duplicates skipped: they tell nothing) is a name the object itself
 * defines (a local or a global). Never a guess: exactly one candidate must lie in the run and no
 * other may touch it; anything else is left unsettled for the caller to copy or refuse.
 */
import type { KernelSymbol, KernelSymbols } from "./kernel-symbols.js";

const positions = new WeakMap<KernelSymbols, Map<KernelSymbol, number>>();

function positionOf(kernel: KernelSymbols, sym: KernelSymbol): number {
  let map = positions.get(kernel);
  if (!map) {
    const list = kernel.byAddress();
    map = new Map();
    for (let i = 0; i < list.length; i++) map.set(list[i]!, i);
    positions.set(kernel, map);
  }
  return map.get(sym) ?? -1;
}

/** kallsyms type letters of one class: text, data, rodata, bss (global or local alike). */
function typeClass(type: string): string {
  return type.toLowerCase();
}

/**
 * Symbols that stand for the function after them, not for an object: objtool's `__pfx_<fn>` over
 * the call padding, kCFI's `__cfi_<fn>`. Skipped: the function they precede speaks for itself.
 */
const COMPANION_PREFIXES = ["__pfx_", "__cfi_"];

/** The nearest symbol of a unique name from `at` in direction `step`, within the same class. */
function nearestUnique(kernel: KernelSymbols, at: number, step: 1 | -1): KernelSymbol | undefined {
  const list = kernel.byAddress();
  const cls = typeClass(list[at]!.type);
  for (let i = at + step; i >= 0 && i < list.length; i += step) {
    const s = list[i]!;
    if (typeClass(s.type) !== cls) return undefined; // the run of this class ended
    if (COMPANION_PREFIXES.some((p) => s.name.startsWith(p))) continue;
    if (kernel.named(s.name).length === 1) return s;
  }
  return undefined;
}

export interface ObjectRunPick {
  /** The candidate in the object's run, when exactly one is. */
  pick: KernelSymbol | undefined;
  /** For each candidate: its unique neighbours below and above, and whether they are the object's. */
  evidence: { candidate: KernelSymbol; below?: string; above?: string; inRun: boolean; touches: boolean }[];
}

/**
 * Of `candidates` (same-named symbols of `kernel`), the one lying in the run of the object whose
 * own names (locals and globals it defines) are `objectNames`.
 */
export function findInObjectRun(
  kernel: KernelSymbols,
  candidates: readonly KernelSymbol[],
  objectNames: ReadonlySet<string>,
): ObjectRunPick {
  const evidence = candidates.map((candidate) => {
    const at = positionOf(kernel, candidate);
    const below = at < 0 ? undefined : nearestUnique(kernel, at, -1);
    const above = at < 0 ? undefined : nearestUnique(kernel, at, 1);
    const ownBelow = below !== undefined && objectNames.has(below.name);
    const ownAbove = above !== undefined && objectNames.has(above.name);
    return {
      candidate,
      below: below?.name,
      above: above?.name,
      inRun: ownBelow && ownAbove,
      touches: ownBelow || ownAbove,
    };
  });
  const inRun = evidence.filter((e) => e.inRun);
  const touching = evidence.filter((e) => e.touches);
  const pick = inRun.length === 1 && touching.length === 1 ? inRun[0]!.candidate : undefined;
  return { pick, evidence };
}
