/**
 * Test support for the patch package tests: a small livepatch object built with the real gcc,
 * and a stub kpatch for running the maintainer scripts without a kernel.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A stub kpatch in `bin` (put it first on PATH): install and uninstall keep modules as files
 * under $KPATCH_LIB_DIR/<kernel>/; load "loads" a module by writing its build id note where
 * /sys/module/<name>/notes would show it, under $KPATCH_SYS_MODULE (an ELF module's own
 * .note.gnu.build-id, by objcopy; another file is a GNU note whose build id is its bytes), and
 * fails for a module whose bytes hold "refused"; unload removes it. With `log`, each call is
 * appended to that file.
 */
export function writeStubKpatch(bin: string, log?: string): void {
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, "kpatch"),
    `#!/bin/sh
${log ? `echo "kpatch $*" >> '${log}'` : ""}
case "$1" in
  install) mkdir -p "$KPATCH_LIB_DIR/$3" && cp "$4" "$KPATCH_LIB_DIR/$3/" ;;
  uninstall) rm "$KPATCH_LIB_DIR/$3/$4.ko" ;;
  load)
    grep -q refused "$2" && { echo "kpatch: Cannot load $2: refused" >&2; exit 1; }
    n=$(basename "$2" .ko); note="$KPATCH_SYS_MODULE/$n/notes/.note.gnu.build-id"
    mkdir -p "$KPATCH_SYS_MODULE/$n/notes"
    objcopy -O binary --only-section=.note.gnu.build-id "$2" "$note" 2>/dev/null ||
      { printf '\\024\\000\\000\\000\\024\\000\\000\\000\\003\\000\\000\\000GNU\\000'; cat "$2"; } > "$note" ;;
  unload) rm -r "$KPATCH_SYS_MODULE/$2" ;;
esac
`,
  );
  chmodSync(join(bin, "kpatch"), 0o755);
}

/** C string literal of `text`: printable ASCII as is, every other byte as an octal escape. */
function cLiteral(text: string): string {
  const bytes = [...Buffer.from(text)];
  return `"${bytes.map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, "0")}`)).join("")}"`;
}

/**
 * A livepatch object as kpatch package reads it, compiled by gcc: a klp_patch (atomic replace
 * unless replace: false) patching vmlinux's cmdline_proc_show, .modinfo with `fields`, a GNU
 * build id (bytes given, a multiple of 4). Not loadable: for packaging, never for a kernel.
 */
export function livepatchObject(
  dir: string,
  options: { replace?: boolean; buildId?: number[] },
  fields: Record<string, string>,
): string {
  const replace = options.replace ?? true;
  const id = options.buildId ?? [1, 2, 3, 4];
  const c = join(dir, "klp.c");
  writeFileSync(
    c,
    [
      "struct klp_func { const char *old_name; void *new_func; unsigned long old_sympos; unsigned long internal[8]; };",
      "struct klp_object { const char *name; struct klp_func *funcs; void *callbacks[4]; unsigned long internal[9]; };",
      "struct klp_patch { void *mod; struct klp_object *objs; void *states; _Bool replace; };",
      "extern char __this_module[];",
      "int livepatch_cmdline_proc_show(void) { return 0; }",
      'static struct klp_func funcs[] = { { "cmdline_proc_show", livepatch_cmdline_proc_show, 0 }, { 0 } };',
      "static struct klp_object objs[] = { { 0, funcs }, { 0 } };",
      `struct klp_patch patch = { __this_module, objs, 0, ${replace ? 1 : 0} };`,
      ...Object.entries(fields).map(
        ([k, v], i) =>
          `static const char m${i}[] __attribute__((section(".modinfo"), used, aligned(1))) = ${cLiteral(`${k}=${v}`)};`,
      ),
      'static const unsigned char id[] __attribute__((section(".note.gnu.build-id"), used, aligned(4))) =',
      `  { 4, 0, 0, 0, ${id.length}, 0, 0, 0, 3, 0, 0, 0, 'G', 'N', 'U', 0, ${id.join(", ")} };`,
    ].join("\n"),
  );
  const ko = join(dir, `${fields["name"] ?? "fix"}.ko`);
  execFileSync("gcc", ["-O2", "-c", c, "-o", ko]);
  return ko;
}
