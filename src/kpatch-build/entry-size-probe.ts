/**
 * Special-section entry sizes measured from a kernel's own build tree: a tiny object compiled
 * with the command kbuild used for one of the tree's objects, sizeof each structure read back
 * from the symbol sizes; cached per tree and config in the cache's entry-sizes/.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENTRY_SIZE_KEYS, type EntrySizes } from "../diff/index.js";
import { readElf } from "../elf/index.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { execCheck, type Runner } from "../util/exec.js";
import { readKbuildCmd } from "./kbuild-tree.js";
import { compilerArgs } from "./object-compile.js";

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
 * and .cmd files): compiles the probe with the command kbuild used for the first object of
 * kernel/, into a temporary directory.
 */
export async function probeEntrySizes(
  buildDir: string,
  options: { cacheDir?: string; run?: Runner } = {},
): Promise<EntrySizes> {
  const config = join(buildDir, ".config");
  if (!existsSync(config)) {
    throw new KpatchError("TREE_NOT_BUILT", `Cannot measure entry sizes in ${buildDir}: it has no .config`, {
      file: buildDir,
    });
  }
  const command = readKbuildCmd(buildDir, probeModel(buildDir)).command;
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
    const args = compilerArgs(command, { source: src, out: obj, modname: "kpatch_sizes" });
    await execCheck(args[0]!, args.slice(1), {
      cwd: buildDir,
      what: `compiling the entry-size probe against ${buildDir}`,
      ...(options.run ? { run: options.run } : {}),
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

/** The object whose kbuild command the probe borrows: the first of kernel/ with a record. */
function probeModel(buildDir: string): string {
  const dir = join(buildDir, "kernel");
  const m = existsSync(dir)
    ? readdirSync(dir)
        .map((f) => /^\.(.+\.o)\.cmd$/.exec(f))
        .find((x) => x)
    : undefined;
  if (!m)
    throw new KpatchError(
      "BUILD_NO_COMMAND",
      `Cannot measure entry sizes in ${buildDir}: no kernel/.*.o.cmd to take the compile command from`,
    );
  return `kernel/${m[1]}`;
}
