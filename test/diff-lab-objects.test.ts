/**
 * The differ over real kernel objects: one file of the lab kernel compiled before and after a
 * small patch, with the lab's own compile command (plus -ffunction-sections -fdata-sections),
 * into a temporary directory; the changed functions must be the ones the patch touched plus those
 * the compiler inlined them into. kpatch-build's test patches that use kpatch-macros.h (shadow,
 * callbacks) are applied with patch(1) the same way. Skipped when the lab kernel is not built.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { diffObjects, ExportTable, probeEntrySizes, splitShell, TargetSymbols } from "../src/diff/index.js";
import { readElf, writeElf } from "../src/elf/index.js";
import { takeCallbacks } from "../src/klp/callbacks.js";
import { labBuildDir } from "../src/lab/paths.js";
import { exec, execCheck } from "../src/util/exec.js";

const buildDir = labBuildDir("6.12");
const MACROS = resolve(import.meta.dirname, "..", "..", "include", "kpatch-ts");
const PATCHES = resolve(import.meta.dirname, "..", "..", "test", "fixtures", "patches", "6.12");
const WRAPPER = join(import.meta.dirname, "fixtures", "diff", "run-diff-object.js");
const ready = existsSync(join(buildDir, "vmlinux")) && existsSync(join(buildDir, "Module.symvers"));
const work = mkdtempSync(join(tmpdir(), "kpatch-diff-lab-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** The lab's compile command for `obj` (e.g. kernel/exit.o), made to compile `src` into `out`. */
function compileArgs(obj: string, src: string, out: string): string[] {
  const cmdFile = join(buildDir, obj.replace(/([^/]+)$/, ".$1.cmd"));
  const line = /^savedcmd_\S+ := (.*)$/m.exec(readFileSync(cmdFile, "utf8"))![1]!;
  const words = splitShell(line.split(" ; ")[0]!);
  const args: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith("-Wp,-MMD")) continue; // would write a dependency file into the lab tree
    if (w === "-o") {
      i++;
      continue;
    }
    if (w.endsWith(".c") && !w.startsWith("-")) continue;
    args.push(w);
  }
  // kpatch-macros.h on the include path, as kpatch-build's builds have it; the source's own
  // directory for its quoted includes ("internal.h"), since the copy is compiled elsewhere.
  const srcDir = join(readlinkSource(), obj.slice(0, obj.lastIndexOf("/")));
  return [...args, "-ffunction-sections", "-fdata-sections", `-I${MACROS}`, `-I${srcDir}`, "-o", out, src];
}

/** `text` (of `file`) with the patch applied by patch(1), in a scratch directory. */
async function applyPatch(text: string, file: string, patchFile: string, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const base = file.slice(file.lastIndexOf("/") + 1);
  writeFileSync(join(dir, base), text);
  await execCheck("patch", ["-s", "--no-backup-if-mismatch", "-i", patchFile, join(dir, base)], {
    what: `applying ${patchFile} to ${file}`,
  });
  return readFileSync(join(dir, base), "utf8");
}

/** Compiles `file` of the lab kernel as it is and with `edit` applied; returns both objects. */
async function buildPair(
  file: string,
  name: string,
  edit: ((text: string) => string) | { patch: string },
): Promise<{ orig: string; patched: string }> {
  const srcDir = readlinkSource();
  const text = readFileSync(join(srcDir, file), "utf8");
  const patchedText =
    typeof edit === "function"
      ? edit(text)
      : await applyPatch(text, file, edit.patch, join(work, name, "patch"));
  assert.notEqual(patchedText, text, `${name}: the edit must change ${file}`);
  const obj = file.replace(/\.c$/, ".o");
  const base = file.slice(file.lastIndexOf("/") + 1);
  const out = { orig: "", patched: "" };
  for (const [v, t] of [
    ["orig", text],
    ["patched", patchedText],
  ] as const) {
    const dir = join(work, name, v);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, base), t);
    out[v] = join(dir, base.replace(/\.c$/, ".o"));
    const args = compileArgs(obj, join(dir, base), out[v]);
    await execCheck(args[0]!, args.slice(1), { cwd: buildDir, what: `compiling ${name} ${v}` });
  }
  return out;
}

/** The kernel source tree the lab was built from (the -I of its first include directory). */
function readlinkSource(): string {
  const cmd = readFileSync(join(buildDir, "kernel", ".exit.o.cmd"), "utf8");
  const m = / -I(\S+)\/arch\/x86\/include /.exec(cmd);
  return m![1]!;
}

describe("differ over lab kernel objects", { skip: ready ? false : "the lab kernel is not built" }, () => {
  let target: Promise<{
    symbols: TargetSymbols;
    exports: ExportTable;
    sizes: Awaited<ReturnType<typeof probeEntrySizes>>;
  }>;
  const context = () => {
    target ??= (async () => ({
      symbols: TargetSymbols.load(readFileSync(join(buildDir, "vmlinux")), "vmlinux"),
      exports: ExportTable.parse(readFileSync(join(buildDir, "Module.symvers"), "utf8")),
      sizes: await probeEntrySizes(buildDir),
    }))();
    return target;
  };

  const cases: { name: string; file: string; edit: (t: string) => string; changed: string[] }[] = [
    {
      name: "exit-string",
      file: "kernel/exit.c",
      edit: (t) =>
        t.replace(
          'return sysfs_emit(page, "%d\\n", atomic_read(&oops_count));',
          'return sysfs_emit(page, "%d oopses\\n", atomic_read(&oops_count));',
        ),
      changed: ["oops_count_show"],
    },
    {
      name: "exit-constant",
      file: "kernel/exit.c",
      edit: (t) =>
        t.replace(
          "__wake_up_sync_key(&parent->signal->wait_chldexit,\n\t\t\t   TASK_INTERRUPTIBLE, p);",
          "__wake_up_sync_key(&parent->signal->wait_chldexit,\n\t\t\t   TASK_NORMAL, p);",
        ),
      changed: ["__wake_up_parent"],
    },
    {
      name: "exit-inlined",
      file: "kernel/exit.c",
      edit: (t) =>
        t.replace(
          "\t\tgetrusage(p, RUSAGE_BOTH, wo->wo_rusage);\n\tput_task_struct(p);",
          "\t\tgetrusage(p, RUSAGE_SELF, wo->wo_rusage);\n\t/* lines below move */\n\tput_task_struct(p);",
        ),
      changed: ["wait_consider_task"],
    },
  ];

  for (const c of cases) {
    test(`${c.name}: ${c.file} changes exactly ${c.changed.join(", ")}`, async () => {
      const { symbols, exports, sizes } = await context();
      const pair = await buildPair(c.file, c.name, c.edit);
      const orig = readElf(readFileSync(pair.orig), pair.orig);
      const patched = readElf(readFileSync(pair.patched), pair.patched);
      const result = diffObjects(orig, patched, { symbols, exports, entrySizes: sizes, target: "vmlinux" });
      assert.deepEqual(result.report.changed.map((f) => f.name).sort(), [...c.changed].sort());
      assert.deepEqual(result.report.new, []);
      for (const f of result.report.changed)
        assert.ok(f.oldSize > 0 && f.why.detail !== "", `${f.name}: a reason`);
      const out = readElf(writeElf(result.output!), "out.o");
      for (const k of result.report.klp) assert.match(k.symbol, /^\.klp\.sym\.vmlinux\.[^,]+,\d+$/);
      for (const f of c.changed) assert.ok(out.findSymbol(f));
      // Unchanged vs. itself: no change at all.
      assert.equal(
        diffObjects(orig, readElf(readFileSync(pair.orig), pair.orig), {
          symbols,
          exports,
          entrySizes: sizes,
        }).changed,
        false,
      );
    });
  }

  // show_val_kb() is inlined into meminfo_proc_show(), which also uses static_cpu_has() (through
  // pgtable_l5_enabled()): its slow path in .altinstr_aux comes along, jumping back into the copy.
  test("meminfo: fs/proc/meminfo.c changes meminfo_proc_show, which uses static_cpu_has()", async () => {
    const { symbols, exports, sizes } = await context();
    const pair = await buildPair("fs/proc/meminfo.c", "meminfo-inline", (t) =>
      t.replace('seq_write(m, " kB\\n", 4);', 'seq_write(m, " KiB\\n", 5);'),
    );
    const orig = readElf(readFileSync(pair.orig), pair.orig);
    const patched = readElf(readFileSync(pair.patched), pair.patched);
    assert.ok(patched.findSection(".altinstr_aux"), "the object has static_cpu_has() slow paths");
    const result = diffObjects(orig, patched, { symbols, exports, entrySizes: sizes, target: "vmlinux" });
    assert.deepEqual(
      result.report.changed.map((f) => f.name),
      ["meminfo_proc_show"],
    );
    const out = readElf(writeElf(result.output!), "out.o");
    const aux = out.lookupSection(".altinstr_aux");
    const text = out.findSymbol("meminfo_proc_show")!.section!;
    const relocs = aux.rela?.relocs ?? [];
    assert.ok(relocs.length > 0);
    for (const r of relocs) {
      if (r.symbol.isSectionSymbol) assert.equal(r.symbol.section, text, "jumps back into the copy");
      else assert.equal(r.symbol.name, "boot_cpu_data");
    }
    // The jump to the slow path lands in the output's .altinstr_aux.
    const toAux = (text.rela?.relocs ?? []).filter((r) => r.symbol.section === aux);
    assert.ok(toAux.length > 0);
    assert.ok(out.findSection(".altinstructions"), "the alternative's entries come along");

    const outPath = join(work, "meminfo-inline", "out.o");
    const cli = await exec(process.execPath, [
      WRAPPER,
      pair.orig,
      pair.patched,
      "-o",
      outPath,
      "-q",
      "--symbols",
      join(buildDir, "vmlinux"),
      "--exports",
      join(buildDir, "Module.symvers"),
      "--kernel",
      buildDir,
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.ok(existsSync(outPath));
  });

  // kpatch-build's own test patches that use kpatch-macros.h: the callbacks come along as new
  // code in their sections, for the module generator; the command exits 0.
  const macroCases: { patch: string; file: string; changed: string[]; callbacks: Record<string, string> }[] =
    [
      {
        patch: "shadow",
        file: "fs/proc/cmdline.c",
        changed: ["cmdline_proc_show"],
        callbacks: { post_unpatch: "kpts_free_shadows" },
      },
      {
        patch: "callbacks",
        file: "fs/proc/version.c",
        changed: ["version_proc_show"],
        callbacks: {
          pre_patch: "kpts_pre_patch",
          post_patch: "kpts_post_patch",
          pre_unpatch: "kpts_pre_unpatch",
          post_unpatch: "kpts_post_unpatch",
        },
      },
    ];

  for (const c of macroCases) {
    test(`${c.patch}.patch: ${c.file} changes ${c.changed.join(", ")} and carries its callbacks`, async () => {
      const { symbols, exports, sizes } = await context();
      const pair = await buildPair(c.file, c.patch, { patch: join(PATCHES, `${c.patch}.patch`) });
      const orig = readElf(readFileSync(pair.orig), pair.orig);
      const patched = readElf(readFileSync(pair.patched), pair.patched);
      const result = diffObjects(orig, patched, { symbols, exports, entrySizes: sizes, target: "vmlinux" });
      const r = result.report;
      assert.deepEqual(r.changed.map((f) => f.name).sort(), [...c.changed].sort());
      assert.deepEqual(r.new, []);
      assert.deepEqual(Object.fromEntries(r.callbacks.map((cb) => [cb.kind, cb.name])), c.callbacks);
      assert.deepEqual(r.warnings, []);
      const out = readElf(writeElf(result.output!), "out.o");
      for (const fn of Object.values(c.callbacks)) assert.ok(out.findSymbols(fn).some((s) => s.section));
      assert.deepEqual(
        out.sections
          .filter((s) => s.name.startsWith(".kpatch_ts."))
          .map((s) => s.name)
          .sort(),
        Object.keys(c.callbacks)
          .map((k) => `.kpatch_ts.callbacks.${k}`)
          .sort(),
      );
      assert.deepEqual(Object.keys(takeCallbacks(out, "__t")).sort(), Object.keys(c.callbacks).sort());

      const outPath = join(work, c.patch, "out.o");
      const cli = await exec(process.execPath, [
        WRAPPER,
        pair.orig,
        pair.patched,
        "-o",
        outPath,
        "-q",
        "--symbols",
        join(buildDir, "vmlinux"),
        "--exports",
        join(buildDir, "Module.symvers"),
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok(existsSync(outPath));
    });
  }
});
