/**
 * Special-section entry sizes of a target kernel: from --entry-sizes, from kpatch's
 * *_STRUCT_SIZE environment variables, or measured by compiling a tiny object against the
 * kernel's own build tree (sizeof each structure, read back from the symbol sizes) and cached per
 * tree. Never guessed.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElf } from "../elf/index.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { execCheck } from "../util/exec.js";
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

/** The probe: one char array per structure, sized by the kernel's own headers. */
const PROBE_SOURCE = `
#include <linux/version.h>
#include <linux/kernel.h>
#include <linux/bug.h>
#include <linux/jump_label.h>
#include <linux/static_call.h>
#include <linux/extable.h>
#include <linux/printk.h>
#include <asm/alternative.h>
#include <asm/extable.h>
#ifdef CONFIG_UNWINDER_ORC
#include <asm/orc_types.h>
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0) && defined(CONFIG_PARAVIRT)
#include <asm/paravirt_types.h>
#endif
#define KPATCH_SIZE(name, type) char __kpatch_size_##name[sizeof(type)];
#ifdef CONFIG_GENERIC_BUG
KPATCH_SIZE(bug, struct bug_entry)
#endif
KPATCH_SIZE(ex, struct exception_table_entry)
KPATCH_SIZE(alt, struct alt_instr)
#ifdef CONFIG_JUMP_LABEL
KPATCH_SIZE(jump, struct jump_entry)
#endif
#ifdef CONFIG_UNWINDER_ORC
KPATCH_SIZE(orc, struct orc_entry)
#endif
#ifdef CONFIG_HAVE_STATIC_CALL_INLINE
KPATCH_SIZE(static_call, struct static_call_site)
#endif
#ifdef CONFIG_PRINTK_INDEX
KPATCH_SIZE(printk_index, struct pi_entry)
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0) && defined(CONFIG_PARAVIRT)
KPATCH_SIZE(para, struct paravirt_patch_site)
#endif
`;

/**
 * Measures the entry sizes of the kernel built in `buildDir` (a kbuild output tree with .config
 * and .cmd files): compiles the probe with the command kbuild used for `cmdFile` (default: the
 * first kernel/*.o.cmd), into a temporary directory. Cached in the cache's entry-sizes/
 * (src/util/cache-dir.ts).
 */
export async function probeEntrySizes(
  buildDir: string,
  options: { cacheDir?: string; cmdFile?: string } = {},
): Promise<EntrySizes> {
  const config = join(buildDir, ".config");
  if (!existsSync(config)) {
    throw new DiffError("DIFF_BAD_INPUT", `Cannot measure entry sizes in ${buildDir}: it has no .config`, {
      file: buildDir,
    });
  }
  const cmdFile = options.cmdFile ?? findCmdFile(buildDir);
  const command = compileCommand(cmdFile);
  const key = createHash("sha256")
    .update(buildDir)
    .update(readFileSync(config))
    .update(command)
    .digest("hex")
    .slice(0, 16);
  const cacheDir = options.cacheDir ?? cachePath("entry-sizes");
  const cached = join(cacheDir, `${key}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, "utf8")) as EntrySizes;

  const dir = mkdtempSync(join(tmpdir(), "kpatch-sizes-"));
  try {
    const src = join(dir, "kpatch_sizes.c");
    const obj = join(dir, "kpatch_sizes.o");
    writeFileSync(src, PROBE_SOURCE);
    const args = probeArgs(command, src, obj);
    await execCheck(args[0]!, args.slice(1), {
      cwd: buildDir,
      what: `compiling the entry-size probe against ${buildDir}`,
    });
    const file = readElf(readFileSync(obj), obj);
    const sizes: EntrySizes = {};
    for (const k of ENTRY_SIZE_KEYS) {
      const sym = file.findSymbol(`__kpatch_size_${k}`);
      if (sym) sizes[k] = Number(sym.size);
    }
    writeFileAtomic(cached, `${JSON.stringify(sizes)}\n`);
    return sizes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function findCmdFile(buildDir: string): string {
  const dir = join(buildDir, "kernel");
  const name = existsSync(dir)
    ? readdirSync(dir).find((f) => f.startsWith(".") && f.endsWith(".o.cmd"))
    : undefined;
  if (!name)
    throw new DiffError(
      "DIFF_BAD_INPUT",
      `Cannot measure entry sizes in ${buildDir}: no kernel/.*.o.cmd to take the compile command from`,
    );
  return join(dir, name);
}

/** The `savedcmd_... := gcc ...` line of a kbuild .cmd file. */
function compileCommand(cmdFile: string): string {
  const text = readFileSync(cmdFile, "utf8");
  const m = /^(?:saved)?cmd_\S+ := (.*)$/m.exec(text);
  if (!m)
    throw new DiffError("DIFF_BAD_INPUT", `Cannot read the compile command in ${cmdFile}`, { file: cmdFile });
  return m[1]!;
}

/**
 * The kbuild command, made to compile `src` into `obj`: the dependency-file option (which would
 * write into the tree), objtool and the source and output names are removed.
 */
export function probeArgs(command: string, src: string, obj: string): string[] {
  const first = command.split(/ ; /)[0]!;
  const words = splitShell(first);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith("-Wp,-MMD") || w.startsWith("-Wp,-MD")) continue;
    if (w === "-o") {
      i++;
      continue;
    }
    if (w === "-c" || w.endsWith(".c") || w.endsWith(".S")) continue;
    if (/^-DKBUILD_(MODFILE|BASENAME|MODNAME)=/.test(w) || w.startsWith("-D__KBUILD_MODNAME=")) continue;
    out.push(w);
  }
  out.push('-DKBUILD_MODNAME="kpatch_sizes"', '-DKBUILD_BASENAME="kpatch_sizes"', "-c", "-o", obj, src);
  return out;
}

/** Splits a shell command line into words (single and double quotes, backslashes). */
export function splitShell(line: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (c === " " || c === "\t") {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
