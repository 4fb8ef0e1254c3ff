/**
 * Every external-module make parses the kernel's top Makefile, which asks the compiler ~35
 * questions (cc-option, as-instr, ld-option...: kbuild's try-run, scripts/Makefile.compiler):
 * each a shell, mkdir, gcc, cc1, as and rm, 1.3-4.7 s of a 1.8-7 s module build (strace -f of
 * the lab's, trixie's and bookworm's module makes: 35 each). Their answers depend only on the
 * command and the programs it runs, so the module's make runs with SHELL= a small sh script kept
 * in the cache that answers a try-run it has seen and runs everything else (and every recipe)
 * with /bin/sh unchanged:
 *
 *   <cache>/kbuild-probes/shell-<n>         the script (make's SHELL)
 *   <cache>/kbuild-probes/answers/<sha256>  a try-run's output, written complete or not at all
 *
 * The key: the command from its `if (` on (the part before only names the scratch directory,
 * which holds the M= path), the Debian release (/etc/debian_version), $PATH, the working
 * directory (the kernel build tree) and the identity of the programs a probe runs: the compiler
 * driver as PATH resolves it, the cc1 and as it runs (`-print-prog-name`), and the linker, each
 * with its real path, device, inode, size, mtime and ctime, found once per build where make runs
 * (this machine or the build root), and the environment variables gcc and binutils read
 * (GCC_ENVIRONMENT). A copied, touched or replaced binary, an
 * `update-alternatives` switch or a /usr/local/bin/gcc earlier in PATH is another key: asked
 * again. A probe is kept only when it runs one of those programs alone (after at most an
 * `echo '...' |` or `printf "%b\n" "..." |` feeding it); any other is run every time. An answer
 * older than the last package change (/var/lib/dpkg/status) is asked again; without that file,
 * /etc/debian_version or the identity nothing is kept.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { exec, type Runner } from "../util/exec.js";

/** Bump with any change to the script: a new file, never one rewritten under a running make. */
const SCRIPT_VERSION = 4;

/**
 * The environment variables that change what gcc, cc1, as or ld answer (gcc's manual, "Environment
 * Variables Affecting GCC"; binutils' search paths): each one's value is part of a probe's key.
 */
const GCC_ENVIRONMENT = [
  "GCC_EXEC_PREFIX",
  "COMPILER_PATH",
  "LIBRARY_PATH",
  "CPATH",
  "C_INCLUDE_PATH",
  "CPLUS_INCLUDE_PATH",
  "OBJC_INCLUDE_PATH",
  "DEPENDENCIES_OUTPUT",
  "SUNPRO_DEPENDENCIES",
  "GCC_COMPARE_DEBUG",
  "SOURCE_DATE_EPOCH",
  "TMPDIR",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "LC_MESSAGES",
  "LD_LIBRARY_PATH",
  "LD_PRELOAD",
];

/** The environment variables the script reads (set for the module's make). */
const TOOLS_VAR = "KPATCH_TS_PROBE_TOOLS";
const PROGRAMS_VAR = "KPATCH_TS_PROBE_PROGRAMS";

function probeShellScript(answers: string): string {
  const plain = 'exec /bin/sh "$@"';
  return [
    "#!/bin/sh",
    "# kpatch-ts: make's SHELL for a module build; answers kbuild try-runs seen before (src/klp/kbuild-probes.ts).",
    `answers='${answers}'`,
    'case "$1:$2" in',
    '  "-c:set -e; TMP="*"; if ("*) ;;',
    `  *) ${plain} ;;`,
    "esac",
    `[ -n "$${TOOLS_VAR}" ] && [ -n "$${PROGRAMS_VAR}" ] && [ -f /var/lib/dpkg/status ] && [ -f /etc/debian_version ] || ${plain}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    "body=${2#*; if (}",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    'probe=${body%%") >/dev/null 2>&1; then"*}',
    `[ "$probe" != "$body" ] || ${plain}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    'probe=${probe#"${probe%%[! ]*}"}',
    // An echo or printf (sh builtins) of a quoted constant may feed the program.
    "case $probe in",
    `  "echo '"*|"printf \\"%b\\\\n\\" \\""*)`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    '    head=${probe%%"| "*}; probe=${probe#*"| "}',
    "    case $head in",
    `      "echo '"*"' ") inner=\${head#"echo '"}; inner=\${inner%"' "}; case $inner in *"'"*) ${plain} ;; esac ;;`,
    `      "printf \\"%b\\\\n\\" \\""*'" ') inner=\${head#*'%b\\n" "'}; inner=\${inner%'" '}; case $inner in *'"'*|*'$'*|*'\`'*) ${plain} ;; esac ;;`,
    `      *) ${plain} ;;`,
    "    esac ;;",
    "esac",
    // The program runs alone: no list, pipe, background, substitution.
    `case $probe in *";"*|*"&"*|*"|"*|*'\`'*|*'$('*) ${plain} ;; esac`,
    `case " $${PROGRAMS_VAR} " in *" \${probe%% *} "*) ;; *) ${plain} ;; esac`,
    "read -r release < /etc/debian_version",
    // gcc's own environment (search paths, exec prefix, locale of its messages) is part of the answer.
    `key=$(printf '%s\\n' "$release" "$PATH" "$PWD" "$${TOOLS_VAR}" "$body" ${GCC_ENVIRONMENT.map((v) => `"v:$${v}"`).join(" ")} | sha256sum)`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    'answer="$answers/${key%% *}"',
    // The kept answer printed with sh builtins (no cat): the lines as written, each ending in a newline.
    'if [ -f "$answer" ] && ! [ /var/lib/dpkg/status -nt "$answer" ]; then',
    '  while IFS= read -r line; do printf \'%s\\n\' "$line"; done < "$answer"; exit 0',
    "fi",
    'out=$(/bin/sh "$@") || exit',
    'mkdir -p "$answers" && printf \'%s\\n\' "$out" > "$answer.$$" && mv -f "$answer.$$" "$answer" || rm -f "$answer.$$"',
    "printf '%s\\n' \"$out\"",
    "",
  ].join("\n");
}

/**
 * Prints, where make runs, each program's real path and identity: the driver and the linker as
 * PATH resolves them, the cc1 and as the driver runs. Fails when one is not found.
 */
const IDENTIFY = [
  "set -e",
  'cc=$(command -v "$1"); ld=$(command -v "$2")',
  'cc1=$("$cc" -print-prog-name=cc1); as=$("$cc" -print-prog-name=as)',
  'case $cc1 in /*) ;; *) cc1=$(command -v "$cc1") ;; esac',
  'case $as in /*) ;; *) as=$(command -v "$as") ;; esac',
  'for p in "$cc" "$cc1" "$as" "$ld"; do [ -x "$p" ]; done',
  'readlink -e "$cc" "$cc1" "$as" "$ld"',
  'stat -L -c \'%n %d %i %s %y %z\' "$cc" "$cc1" "$as" "$ld"',
].join("\n");

/** The value of `NAME=` among make's arguments, or undefined. */
function makeVariable(makeArgs: readonly string[], name: string): string | undefined {
  const arg = [...makeArgs].reverse().find((a) => a.startsWith(`${name}=`));
  return arg?.slice(name.length + 1);
}

/**
 * The identity of the programs kbuild's probes run for this build (CC= and LD= of `makeArgs`,
 * else kbuild's gcc and ld), found through `run`; undefined (nothing kept) for a cross or LLVM
 * build or when one cannot be found.
 */
async function probeTools(
  makeArgs: readonly string[],
  run: Runner,
  env: NodeJS.ProcessEnv,
): Promise<{ programs: string; identity: string } | undefined> {
  for (const v of ["CROSS_COMPILE", "LLVM"]) {
    if (makeVariable(makeArgs, v) !== undefined || env[v]) return undefined;
  }
  const cc = makeVariable(makeArgs, "CC") ?? "gcc";
  const ld = makeVariable(makeArgs, "LD") ?? "ld";
  if (![cc, ld].every((p) => /^[\w./+-]+$/.test(p))) return undefined;
  const r = await run("sh", ["-c", IDENTIFY, "identify", cc, ld], { env });
  if (r.code !== 0 || r.stdout.trim().split("\n").length !== 8) return undefined;
  return { programs: `${cc} ${ld}`, identity: r.stdout.trim().replace(/\n/g, " | ") };
}

/**
 * What routes the module make's kbuild try-runs through the kept answers: make's SHELL= argument
 * and the environment naming the programs' identity; nothing when the cache's path would need
 * quoting in make or sh or the programs cannot be identified.
 */
export async function probeShell(options: {
  makeArgs: readonly string[];
  run?: Runner;
  env?: NodeJS.ProcessEnv;
}): Promise<{ args: string[]; env: Record<string, string> }> {
  const none = { args: [], env: {} };
  const path = cachePath("kbuild-probes", `shell-${SCRIPT_VERSION}`);
  if (!/^[\w./+,@=-]+$/.test(path)) return none;
  const tools = await probeTools(options.makeArgs, options.run ?? exec, options.env ?? process.env);
  if (!tools) return none;
  const text = probeShellScript(cachePath("kbuild-probes", "answers"));
  if (!existsSync(path) || readFileSync(path, "utf8") !== text) writeFileAtomic(path, text, 0o755);
  return { args: [`SHELL=${path}`], env: { [TOOLS_VAR]: tools.identity, [PROGRAMS_VAR]: tools.programs } };
}
