import type { SpecialKind } from "./special-kind.js";

/**
 * Sections whose entries point into code but that a module cannot carry: included code with an
 * entry in one of them is refused, with the reason.
 */
export const refusedSections: readonly SpecialKind[] = [
  {
    name: ".static_call_tramp_key",
    size: 8,
    anchor: 0,
    loadTime: true,
    refuse: "defines a static call trampoline: a live patch cannot add static calls to the running kernel",
    why: "static call trampoline keys (vmlinux only)",
  },
];
