import type { CodePieceKind, SpecialKind } from "./special-kind.js";

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
  compare: true,
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

/**
 * static_cpu_has()'s slow paths (<asm/cpufeature.h>): for each use, `testb $bit,
 * boot_cpu_data+N(%rip); jnz t_yes; jmp t_no`, entered by the `jmp` at the alternative's site
 * in the function, all of an object's in one .altinstr_aux. The code runs only until
 * apply_alternatives() rewrites the site (vmlinux frees it with the init memory; in a module it
 * is dead once module_finalize() has run), but the module loader still applies its relocations.
 */
export const altInstrAux: CodePieceKind = {
  name: ".altinstr_aux",
  why: "static_cpu_has() slow paths, run only before apply_alternatives() rewrites their sites",
};
