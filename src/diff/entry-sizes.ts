/**
 * Special-section entry sizes of a target kernel, as the differ is given them: from
 * --entry-sizes or from kpatch's *_STRUCT_SIZE environment variables. Measuring them from a
 * kernel's build tree is kbuild's business: src/kpatch-build/entry-size-probe.ts. Never guessed.
 */
import { DiffError } from "./diff-error.js";
import { ENTRY_SIZE_KEYS, type EntrySizeKey, type EntrySizes } from "./special/special-kind.js";

/** `bug=12,ex=12,alt=14` → sizes; throws DIFF_BAD_INPUT on anything else. */
export function parseEntrySizes(text: string): EntrySizes {
  const sizes: EntrySizes = {};
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const m = /^\s*([a-z_]+)\s*=\s*(\d+)\s*$/.exec(part);
    const key = m?.[1] as EntrySizeKey | undefined;
    if (!m || !key || !ENTRY_SIZE_KEYS.includes(key) || Number(m[2]) <= 0) {
      throw new DiffError(
        "DIFF_BAD_INPUT",
        `Cannot read entry size "${part}": expected NAME=BYTES with NAME one of ${ENTRY_SIZE_KEYS.join(", ")}`,
      );
    }
    sizes[key] = Number(m[2]);
  }
  return sizes;
}

const ENV_NAMES: Record<EntrySizeKey, string> = {
  bug: "BUG_STRUCT_SIZE",
  ex: "EX_STRUCT_SIZE",
  alt: "ALT_STRUCT_SIZE",
  para: "PARA_STRUCT_SIZE",
  jump: "JUMP_STRUCT_SIZE",
  orc: "ORC_STRUCT_SIZE",
  static_call: "STATIC_CALL_STRUCT_SIZE",
  printk_index: "PRINTK_INDEX_STRUCT_SIZE",
};

/** kpatch's BUG_STRUCT_SIZE-style variables. */
export function entrySizesFromEnv(env: NodeJS.ProcessEnv = process.env): EntrySizes {
  const sizes: EntrySizes = {};
  for (const key of ENTRY_SIZE_KEYS) {
    const v = env[ENV_NAMES[key]];
    if (v === undefined || v === "") continue;
    if (!/^\d+$/.test(v) || Number(v) <= 0) {
      throw new DiffError("DIFF_BAD_INPUT", `Cannot read ${ENV_NAMES[key]}=${v}: not a positive number`);
    }
    sizes[key] = Number(v);
  }
  return sizes;
}
