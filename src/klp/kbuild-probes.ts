/**
 * Every external-module make parses the kernel's top Makefile, which asks the compiler ~35
 * questions (cc-option, as-instr, ld-option...: kbuild's try-run, scripts/Makefile.compiler):
 * each a shell, mkdir, gcc, cc1, as and rm, 2.5-4.7 s of a 5-7 s module build at load 7-9
 * (strace -f of the trixie and bookworm module makes, 35 each). Their answers depend only on
 * the command and the toolchain, so the module's make runs with SHELL= a small sh script kept in
 * the cache that answers a try-run it has seen and runs everything else (and every recipe) with
 * /bin/sh unchanged:
 *
 *   <cache>/kbuild-probes/shell-<n>         the script (make's SHELL)
 *   <cache>/kbuild-probes/answers/<sha256>  a try-run's output, written complete or not at all
 *
 * The key is the command from its `if (` on (the part before only names the scratch directory,
 * which holds the M= path), with the Debian release (/etc/debian_version), $PATH and the
 * working directory (the kernel build tree), as seen where make runs: this machine or a build
 * root (the cache is bind-mounted at the same path in both). An answer older than the last
 * package change there (/var/lib/dpkg/status) is asked again; without those two files nothing
 * is kept. The flags kbuild ends up with are the ones the probes would give: the module's code is
 * the same.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";

/** Bump with any change to the script: a new file, never one rewritten under a running make. */
const SCRIPT_VERSION = 1;

function probeShellScript(answers: string): string {
  return [
    "#!/bin/sh",
    "# kpatch-ts: make's SHELL for a module build; answers kbuild try-runs seen before (src/klp/kbuild-probes.ts).",
    `answers='${answers}'`,
    'case "$1:$2" in',
    '  "-c:set -e; TMP="*"; if ("*) ;;',
    '  *) exec /bin/sh "$@" ;;',
    "esac",
    '[ -f /var/lib/dpkg/status ] && [ -f /etc/debian_version ] || exec /bin/sh "$@"',
    "read -r release < /etc/debian_version",
    `key=$(printf '%s\\n' "$release" "$PATH" "$PWD" "\${2#*; if (}" | sha256sum)`,
    `answer="$answers/\${key%% *}"`,
    'if [ -f "$answer" ] && ! [ /var/lib/dpkg/status -nt "$answer" ]; then exec cat "$answer"; fi',
    'out=$(/bin/sh "$@") || exit',
    'mkdir -p "$answers" && printf \'%s\\n\' "$out" > "$answer.$$" && mv -f "$answer.$$" "$answer" || rm -f "$answer.$$"',
    "printf '%s\\n' \"$out\"",
    "",
  ].join("\n");
}

/**
 * The make arguments that route kbuild's try-runs through the kept answers (SHELL=...); none
 * when the cache's path would need quoting in make or sh.
 */
export function probeShellArgs(): string[] {
  const path = cachePath("kbuild-probes", `shell-${SCRIPT_VERSION}`);
  if (!/^[\w./+,@=-]+$/.test(path)) return [];
  const text = probeShellScript(cachePath("kbuild-probes", "answers"));
  if (!existsSync(path) || readFileSync(path, "utf8") !== text) writeFileAtomic(path, text, 0o755);
  return [`SHELL=${path}`];
}
