/**
 * Kernel config fragments: parse `CONFIG_X=v` and `# CONFIG_X is not set` lines, and check
 * that a resulting .config holds every line of a fragment (Kconfig silently drops options
 * whose dependencies are missing, so every line is checked after olddefconfig).
 */
import { readFileSync } from "node:fs";

/** Option name → value ("y", "m", a number or string, or "n" for "is not set"). */
export type KernelConfig = Map<string, string>;

export function parseConfig(text: string): KernelConfig {
  const cfg: KernelConfig = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    let m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m) {
      cfg.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (m) cfg.set(m[1]!, "n");
  }
  return cfg;
}

export function readConfig(path: string): KernelConfig {
  return parseConfig(readFileSync(path, "utf8"));
}

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
