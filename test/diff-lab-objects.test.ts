/**
 * The differ over real kernel objects: one file of the lab kernel compiled before and after a
 * small patch, with the lab's own compile command (plus -ffunction-sections -fdata-sections),
 * into a temporary directory; the changed functions must be the ones the patch touched plus those
 * the compiler inlined them into. kpatch-build's test patches that use kpatch-macros.h (shadow,
 * callbacks) are applied with patch(1) the same way. Skipped when the lab kernel is not built.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { diffObjects } from "../src/diff/index.js";
import { readElf, writeElf } from "../src/elf/index.js";
import { takeCallbacks } from "../src/klp/callbacks.js";
import { exec } from "../src/util/exec.js";
import { buildDir, buildPair as buildLabPair, labReady, labTarget } from "./fixtures/diff/lab-pair.js";

const PATCHES = resolve(import.meta.dirname, "..", "..", "test", "fixtures", "patches", "6.12");
const WRAPPER = join(import.meta.dirname, "fixtures", "diff", "run-diff-object.js");
const work = mkdtempSync(join(tmpdir(), "kpatch-diff-lab-"));
after(() => rmSync(work, { recursive: true, force: true }));
const buildPair = (file: string, name: string, edit: Parameters<typeof buildLabPair>[3]) =>
  buildLabPair(work, file, name, edit);

describe("differ over lab kernel objects", { skip: labReady ? false : "the lab kernel is not built" }, () => {
  const context = labTarget;

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
    {
      // Every init_waitqueue_head()/mutex_init()/init_rwsem() has its own `static struct
      // lock_class_key __key`, numbered from the end of the file: a second one in sighand_ctor
      // (the last function with one) renumbers all ten. They pair by the functions that use them
      // (copy_process has three), so only sighand_ctor changes.
      name: "fork-lock-keys",
      file: "kernel/fork.c",
      edit: (t) =>
        t.replace(
          "\tinit_waitqueue_head(&sighand->signalfd_wqh);\n}",
          "\tinit_waitqueue_head(&sighand->signalfd_wqh);\n\tinit_waitqueue_head(&sighand->signalfd_wqh);\n}",
        ),
      changed: ["sighand_ctor"],
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

  // Every line of mm/page_alloc.c moved: the __init functions with a pr_debug() (zone_pcp_init)
  // refer to a __dyndbg descriptor whose line changed, which is not an __init change.
  test("page_alloc: every line moved, a function added: only the new function", async () => {
    const { symbols, exports, sizes } = await context();
    const pair = await buildPair(
      "mm/page_alloc.c",
      "page-alloc-moved",
      (t) =>
        `/* every line moves */\n${t}\nint kpatch_ts_added(int x);\nint kpatch_ts_added(int x) { return x + 1; }\n`,
    );
    const orig = readElf(readFileSync(pair.orig), pair.orig);
    const patched = readElf(readFileSync(pair.patched), pair.patched);
    const result = diffObjects(orig, patched, { symbols, exports, entrySizes: sizes, target: "vmlinux" });
    assert.deepEqual(result.report.changed, []);
    assert.deepEqual(
      result.report.new.map((f) => f.name),
      ["kpatch_ts_added"],
    );
  });

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
