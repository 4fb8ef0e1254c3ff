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
import { buildErrors, exec, shellQuote } from "../util/exec.js";
import { throwIfChildStopped } from "./interrupt.js";
import { cmdFile } from "./kbuild-tree.js";

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

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** kbuild's command for `obj` (relative to the build tree), as recorded in its .cmd file. */
export function savedCommand(buildDir: string, obj: string): string {
  const file = cmdFile(buildDir, obj);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new KpatchError("BUILD_NO_COMMAND", `Cannot find how ${obj} was built: no ${file}`, { file: obj });
  }
  // "savedcmd_" since 6.3, "cmd_" before (6.1).
  const m = new RegExp(`^(?:savedcmd|cmd)_${escapeRe(obj)} := (.*)$`, "m").exec(text);
  if (!m)
    throw new KpatchError("BUILD_NO_COMMAND", `Cannot read the build command of ${obj} in ${file}`, {
      file: obj,
    });
  return m[1]!;
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
  const o = escapeRe(obj);
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
 * Compile `obj` of the build tree into `out`; BUILD_FAILED carries the compiler's errors,
 * INTERRUPTED says the run was stopped (or the compiler killed by Ctrl-C).
 */
export async function compileObject(
  buildDir: string,
  obj: string,
  out: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const command = sectionCommand(savedCommand(buildDir, obj), obj, out);
  mkdirSync(dirname(out), { recursive: true });
  const r = await exec("sh", ["-c", command], {
    cwd: buildDir,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (r.code !== 0) {
    throwIfChildStopped(r, options.signal);
    throw new KpatchError("BUILD_FAILED", `Cannot compile ${obj}:\n${buildErrors(r, 25)}`, {
      file: obj,
    });
  }
}
