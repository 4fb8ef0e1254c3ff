/**
 * Compiling one kernel object the way kbuild compiled it, but with one function and one data
 * object per section (-ffunction-sections -fdata-sections), into a directory of ours. The
 * command comes from kbuild's own record (`savedcmd_<obj>` in .<name>.o.cmd in the target's
 * build tree), so flags, defines, include paths, objtool passes and generated headers are the
 * ones that built the running kernel; only the section flags, our include directory (for
 * kpatch-macros.h) and the output path differ. Nothing is written into the build tree.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { escapeRegExp } from "../util/escape-regexp.js";
import { buildErrors, exec, type Runner, shellQuote } from "../util/exec.js";
import { throwIfChildStopped } from "./interrupt.js";
import { readKbuildCmd } from "./kbuild-tree.js";

export const SECTION_FLAGS = "-ffunction-sections -fdata-sections";

/** The repository's include/kpatch-ts (kpatch-macros.h for patch authors). */
const MACROS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "include", "kpatch-ts");

/** Where compiles find kpatch-macros.h (a copy in the cache, kept current). */
export function macrosIncludeDir(): string {
  return cachePath("include");
}

export function installMacros(): void {
  mkdirSync(macrosIncludeDir(), { recursive: true });
  const from = join(MACROS_DIR, "kpatch-macros.h");
  const to = join(macrosIncludeDir(), "kpatch-macros.h");
  if (!existsSync(to) || readFileSync(to, "utf8") !== readFileSync(from, "utf8")) copyFileSync(from, to);
}

/** kbuild's command for `obj` (relative to the build tree), as recorded in its .cmd file. */
export function savedCommand(buildDir: string, obj: string): string {
  return readKbuildCmd(buildDir, obj).command;
}

/**
 * The command rewritten to write `out` instead of `obj`: no dependency file, the section
 * flags and our include directory right after the compiler name. objtool passes stay, except
 * a link-time one (`--link`, as 6.12 runs on a single-object module): a kernel that runs objtool
 * on linked modules runs it over the linked patch module too, and that pass adds its sections
 * (ORC, return and call sites...) for all of the module's code only when the objects have none
 * yet. Kernels that run objtool per object (6.1) never run it on the linked module, so there
 * the differ's output must carry those sections itself. kbuild's command is a shell string and
 * stays one; the paths added to it are quoted (a cache or work directory may hold spaces or `$`).
 */
export function sectionCommand(command: string, obj: string, out: string): string {
  const o = escapeRegExp(obj);
  let c = command
    .split(";")
    .filter((part) => !(/(^|\/)objtool\s/.test(part.trim()) && /\s--link(\s|$)/.test(part)))
    .join(";");
  c = c.replace(/\s-Wp,-MMD,\S+/g, "");
  const include = `-I${shellQuote(macrosIncludeDir())}`;
  c = c.replace(/^(\s*\S*gcc\S*)\s/, (_, gcc: string) => `${gcc} ${SECTION_FLAGS} ${include} `);
  if (!c.includes(SECTION_FLAGS)) {
    throw new KpatchError("BUILD_NO_COMMAND", `Cannot find the compiler in the build command of ${obj}`, {
      file: obj,
    });
  }
  // The object path as a whole word (objtool passes take it as their last argument).
  c = c.replace(new RegExp(`(^|\\s)${o}(?=\\s|;|$)`, "g"), (_, space: string) => space + shellQuote(out));
  return c;
}

/**
 * The compiler part of a kbuild command as an argument list, made to compile another `source`
 * into `out`: the dependency file, objtool and the recorded source and output are dropped,
 * `flags` go before `-c -o out source`. With `modname`, the KBUILD_* name defines are replaced
 * (a probe compiled against the tree is no part of the recorded object).
 */
export function compilerArgs(
  command: string,
  options: { source: string; out: string; flags?: readonly string[]; modname?: string },
): string[] {
  const words = splitShell(command.split(/ ; /)[0]!);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith("-Wp,-MMD") || w.startsWith("-Wp,-MD")) continue;
    if (w === "-o") {
      i++;
      continue;
    }
    if (w === "-c" || (!w.startsWith("-") && (w.endsWith(".c") || w.endsWith(".S")))) continue;
    if (
      options.modname !== undefined &&
      (/^-DKBUILD_(MODFILE|BASENAME|MODNAME)=/.test(w) || w.startsWith("-D__KBUILD_MODNAME="))
    )
      continue;
    out.push(w);
  }
  if (options.modname !== undefined) {
    const name = JSON.stringify(options.modname);
    out.push(`-DKBUILD_MODNAME=${name}`, `-DKBUILD_BASENAME=${name}`);
  }
  out.push(...(options.flags ?? []), "-c", "-o", options.out, options.source);
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

/**
 * Compile `obj` of the build tree into `out`; BUILD_FAILED carries the compiler's errors,
 * INTERRUPTED says the run was stopped (or the compiler killed by Ctrl-C).
 */
export async function compileObject(
  buildDir: string,
  obj: string,
  out: string,
  options: { signal?: AbortSignal | undefined; run?: Runner | undefined } = {},
): Promise<void> {
  const command = sectionCommand(savedCommand(buildDir, obj), obj, out);
  mkdirSync(dirname(out), { recursive: true });
  const r = await (options.run ?? exec)("sh", ["-c", command], {
    cwd: buildDir,
    processGroup: true,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (r.code !== 0) {
    throwIfChildStopped(r, options.signal);
    throw new KpatchError("BUILD_FAILED", `Cannot compile ${obj}:\n${buildErrors(r, 25)}`, {
      file: obj,
    });
  }
}
