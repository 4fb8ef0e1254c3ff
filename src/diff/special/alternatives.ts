import type { SpecialKind } from "./special-kind.js";

/**
 * Alternatives: struct alt_instr {instr_offset, repl_offset, ...}; the replacement bytes live in
 * .altinstr_replacement and are copied with the entries that point at them.
 */
export const altInstructions: SpecialKind = {
  name: ".altinstructions",
  size: "alt",
  anchor: 0,
  loadTime: true,
  payload: ".altinstr_replacement",
  why: "CPU-feature alternatives: apply_alternatives() rewrites these sites in module_finalize()",
};

/** Paravirt patch sites (kernels before 6.8): struct paravirt_patch_site {instr, type, len}. */
export const paraInstructions: SpecialKind = {
  name: ".parainstructions",
  size: "para",
  anchor: 0,
  loadTime: true,
  why: "paravirt call sites: apply_paravirt() patches them in module_finalize()",
};
