/**
 * Kernel config fragments (read with src/kpatch-build/kernel-config.ts): check that a resulting
 * .config holds every line of a fragment (Kconfig silently drops options
 * whose dependencies are missing, so every line is checked after olddefconfig).
 */
import type { KernelConfig } from "../kpatch-build/kernel-config.js";

export interface ConfigMismatch {
  option: string;
  wanted: string;
  got: string;
}

/** The fragment lines that the config does not hold ("n" when absent). */
export function configMismatches(fragment: KernelConfig, config: KernelConfig): ConfigMismatch[] {
  const out: ConfigMismatch[] = [];
  for (const [option, wanted] of fragment) {
    const got = config.get(option) ?? "n";
    if (got !== wanted) out.push({ option, wanted, got });
  }
  return out;
}

export function formatMismatches(list: readonly ConfigMismatch[]): string {
  return list.map((m) => `  ${m.option}: wanted ${m.wanted}, got ${m.got}`).join("\n");
}
