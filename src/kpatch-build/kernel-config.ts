/**
 * A kernel's .config: `CONFIG_X=v` and `# CONFIG_X is not set` lines, as Kconfig writes them.
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
