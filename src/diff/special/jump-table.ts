import type { SpecialKind } from "./special-kind.js";

/** Static branches: struct jump_entry {code, target, key}; the key must resolve at module load. */
export const jumpTable: SpecialKind = {
  name: "__jump_table",
  size: "jump",
  anchor: 0,
  loadTime: true,
  why: "static keys: jump_label_add_module() patches these sites when the module comes up",
};

/** The static_call sites: struct static_call_site {addr, key}. */
export const staticCallSites: SpecialKind = {
  name: ".static_call_sites",
  size: "static_call",
  anchor: 0,
  loadTime: true,
  why: "inline static calls: static_call_add_module() patches these call sites at module load",
};
