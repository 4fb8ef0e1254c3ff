import type { SpecialKind } from "./special-kind.js";

/**
 * Runtime constants (6.11+, <asm/runtime-const.h>): sections runtime_ptr_<sym> and
 * runtime_shift_<sym> list s32 places in code where vmlinux, at boot, writes a variable's value
 * into an instruction (runtime_const_init()). The module loader never does, and a module built
 * from the same source reads the variable instead (`#define runtime_const_ptr(sym) (sym)` under
 * MODULE). So a patch's copy of such code does what a module build does:
 *  - runtime_ptr_<sym>: the site is `movabs $imm64, %reg` (10 bytes), rewritten into
 *    `mov sym(%rip), %reg` (7 bytes) and a 3-byte NOP: the same value, read from the variable
 *    vmlinux set before patching it in (USER_PTR_MAX, dentry_hashtable: never written after boot);
 *  - runtime_shift_<sym>: the site is the imm8 of `shr $imm8, %reg32`; no instruction of the
 *    same size shifts by a count read from memory, so a change there is refused.
 */
export function isRuntimeConstSection(name: string): boolean {
  return name.startsWith("runtime_ptr_") || name.startsWith("runtime_shift_");
}

/** The variable a runtime constant section names: runtime_ptr_USER_PTR_MAX → USER_PTR_MAX. */
export function runtimeConstVariable(name: string): string {
  return name.replace(/^runtime_(ptr|shift)_/, "");
}

/** The placeholder runtime_const_ptr() assembles, which boot replaces by the value. */
export const RUNTIME_PTR_PLACEHOLDER = 0x0123456789abcdefn;

export function runtimeConstKind(name: string): SpecialKind {
  const variable = runtimeConstVariable(name);
  if (name.startsWith("runtime_ptr_")) {
    return {
      name,
      size: 4,
      anchor: 0,
      loadTime: true,
      rewrite: "runtime-ptr",
      why: `runtime constant sites of ${variable}, patched at boot: the patch's copies read ${variable} instead`,
    };
  }
  return {
    name,
    size: 4,
    anchor: 0,
    loadTime: true,
    refuse: `uses the runtime constant shift ${variable} (${name}): its count is an instruction immediate that only vmlinux writes, at boot, and no instruction of the same size can read ${variable} instead`,
    why: "runtime constant shift counts, patched once at boot",
  };
}

/**
 * `movabs $RUNTIME_PTR_PLACEHOLDER, %reg` whose imm64 starts at `at` in `code`, rewritten in
 * place into `mov 0(%rip), %reg; nopl (%rax)`. Returns the offset of the disp32 the caller
 * relocates to the variable (PC32, addend -4), or a reason when the bytes are not that movabs.
 */
export function rewriteRuntimePtrSite(code: Uint8Array, at: number): number | string {
  const rex = code[at - 2];
  const op = code[at - 1];
  if (
    at < 2 ||
    at + 8 > code.length ||
    (rex !== 0x48 && rex !== 0x49) ||
    op === undefined ||
    op < 0xb8 ||
    op > 0xbf
  )
    return "the site is not a movabs into a register";
  const imm = new DataView(code.buffer, code.byteOffset + at, 8).getBigUint64(0, true);
  if (imm !== RUNTIME_PTR_PLACEHOLDER) return "the site does not hold runtime_const_ptr()'s placeholder";
  const reg = (op - 0xb8) | ((rex & 1) << 3);
  const start = at - 2;
  code.set([0x48 | ((reg >> 3) << 2), 0x8b, 0x05 | ((reg & 7) << 3), 0, 0, 0, 0, 0x0f, 0x1f, 0x00], start);
  return start + 3;
}
