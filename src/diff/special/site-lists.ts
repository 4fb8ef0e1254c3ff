import type { SpecialKind } from "./special-kind.js";

/** Lists of code addresses, one s32 (relative) each, that objtool or the assembler records. */
function siteList(name: string, why: string): SpecialKind {
  return { name, size: 4, anchor: 0, loadTime: true, why };
}

export const siteLists: readonly SpecialKind[] = [
  siteList(".smp_locks", "lock prefixes turned into NOPs on UP: alternatives_smp_module_add()"),
  siteList(".retpoline_sites", "indirect thunk calls rewritten by apply_retpolines() in module_finalize()"),
  siteList(".return_sites", "return thunk jumps rewritten by apply_returns() in module_finalize()"),
  siteList(".call_sites", "call depth tracking sites: callthunks_patch_module_calls()"),
  siteList(".cfi_sites", "kCFI/FineIBT sites: apply_fineibt() in module_finalize()"),
  siteList(".ibt_endbr_seal", "endbr64 of functions never called indirectly: sealed by apply_seal_endbr()"),
];

/** Function-entry records: one absolute 64-bit address per function. */
export const mcountLoc: SpecialKind = {
  name: "__mcount_loc",
  size: 8,
  anchor: 0,
  loadTime: true,
  why: "fentry call sites: ftrace_module_init() makes them NOPs and traceable",
};

export const patchableFunctionEntries: SpecialKind = {
  name: "__patchable_function_entries",
  size: 8,
  anchor: 0,
  loadTime: true,
  why: "call padding before each function (-fpatchable-function-entry): FineIBT and call thunks use it",
};
