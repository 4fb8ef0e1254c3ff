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

/** runtime_ptr_<name> / runtime_shift_<name>: s32 sites of runtime constants (6.11+). */
export function isRuntimeConstSection(name: string): boolean {
  return name.startsWith("runtime_ptr_") || name.startsWith("runtime_shift_");
}

/** A runtime constant section: vmlinux patches these sites at boot; <asm/runtime-const.h> rejects MODULE. */
export function runtimeConstKind(name: string): SpecialKind {
  return {
    name,
    size: 4,
    anchor: 0,
    loadTime: true,
    refuse: `uses runtime constants (${name}), which only vmlinux patches at boot: a module cannot carry them`,
    why: "runtime constant sites, patched once at boot",
  };
}
