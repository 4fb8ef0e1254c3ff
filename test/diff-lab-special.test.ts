/**
 * The differ's special sections on real lab kernel objects (test/fixtures/diff/lab-pair.ts):
 * tracepoints and static branches whose key only a klp relocation reaches, dynamic debug
 * descriptors, runtime constants. Each case: the functions in the output and, per output
 * section, the relocation targets its kept entries must name. Skipped when the lab is not built.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { diffObjects, isDiffError } from "../src/diff/index.js";
import { type ElfFile, readElf, writeElf } from "../src/elf/index.js";
import { execCheck } from "../src/util/exec.js";
import { buildDir, buildPair, labReady, labTarget } from "./fixtures/diff/lab-pair.js";

const PATCHES = join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", "6.12");
const work = mkdtempSync(join(tmpdir(), "kpatch-diff-special-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** The symbol names the relocations of every output section named `name` refer to. */
function relocNames(out: ElfFile, name: string): string[] {
  return out.sections
    .filter((s) => s.name === name)
    .flatMap((s) => (s.rela?.relocs ?? []).map((r) => r.symbol.displayName));
}

/** Bytes of all output sections named `name`. */
function sizeOf(out: ElfFile, name: string): number {
  return out.sections.filter((s) => s.name === name).reduce((n, s) => n + s.size, 0);
}

interface Case {
  name: string;
  file: string;
  edit: ((t: string) => string) | { patch: string };
  changed: string[];
  /** A refusal instead: the code and a pattern of the message. */
  error?: { code: string; message: RegExp };
  /** Output section → names its relocations must include. */
  refers?: Record<string, string[]>;
  /** Output section → its size in entries of the lab's layout (0: absent). */
  entries?: Record<string, number>;
  /**
   * Run the lab's objtool with --static-call on both objects, as 6.1 builds do per object
   * (.static_call_sites naming the keys, __SCK__*, directly; 6.12 makes them at vmlinux link).
   */
  staticCallSites?: boolean;
}

const CASES: Case[] = [
  {
    // trace_sched_process_free(): the tracepoint's static key __tracepoint_sched_process_free is
    // not exported; load_module() applies .klp.rela.vmlinux.__jump_table before
    // jump_label_add_module() reads the entry.
    name: "tracepoint",
    file: "kernel/exit.c",
    edit: (t) =>
      t.replace(
        "\ttrace_sched_process_free(tsk);\n",
        "\tif (tsk->exit_code != 12345)\n\t\ttrace_sched_process_free(tsk);\n",
      ),
    changed: ["delayed_put_task_struct"],
    refers: {
      __jump_table: [".klp.sym.vmlinux.__tracepoint_sched_process_free,0"],
      ".text.delayed_put_task_struct": [".klp.sym.vmlinux.__SCT__tp_func_sched_process_free,0"],
    },
    entries: { __jump_table: 1 },
  },
  {
    // The same function as 6.1 builds it: its .static_call_sites entries name
    // __SCK__tp_func_sched_process_free and (PREEMPT_DYNAMIC) __SCK__preempt_schedule_notrace,
    // neither exported: both reach the keys through .klp.rela.vmlinux..static_call_sites, applied
    // before static_call_add_module().
    name: "static-call-sites",
    file: "kernel/exit.c",
    edit: (t) =>
      t.replace(
        "\ttrace_sched_process_free(tsk);\n",
        "\tif (tsk->exit_code != 12345)\n\t\ttrace_sched_process_free(tsk);\n",
      ),
    staticCallSites: true,
    changed: ["delayed_put_task_struct"],
    refers: {
      ".static_call_sites": [
        ".klp.sym.vmlinux.__SCK__tp_func_sched_process_free,0",
        ".klp.sym.vmlinux.__SCK__preempt_schedule_notrace,0",
      ],
    },
    entries: { ".static_call_sites": 2, __jump_table: 1 },
  },
  {
    // get_signal()'s tracepoint is defined in kernel/signal.c itself (CREATE_TRACE_POINTS): the
    // tracepoint, its pointer and name (__tracepoints*) and its static call trampoline stay the
    // running kernel's, reached through klp relocations; none is copied.
    name: "tracepoint-defined-here",
    file: "kernel/signal.c",
    edit: (t) =>
      t.replace(
        "\t\ttrace_signal_deliver(signr, &ksig->info, ka);\n",
        "\t\ttrace_signal_deliver(signr, &ksig->info, ka);\n\t\tif (signr == 12345)\n\t\t\tsignr = 12346;\n",
      ),
    changed: ["get_signal"],
    refers: {
      __jump_table: [".klp.sym.vmlinux.__tracepoint_signal_deliver,0"],
      ".text.get_signal": [".klp.sym.vmlinux.__SCT__tp_func_signal_deliver,0"],
    },
    entries: { __tracepoints: 0, __tracepoints_ptrs: 0, __tracepoints_strings: 0, ".static_call.text": 0 },
  },
  {
    // A pernet exit method is __net_exit, which is __ref here: .ref.text is no __init code, it
    // runs whenever a network namespace goes away.
    name: "ref-text",
    file: "net/core/sock.c",
    edit: (t) =>
      t.replace(
        "\tfree_percpu(net->core.prot_inuse);\n}\n",
        "\tfree_percpu(net->core.prot_inuse);\n\tnet->core.prot_inuse = NULL;\n}\n",
      ),
    changed: ["sock_inuse_exit_net"],
  },
  {
    // filldir64()'s user_write_access_begin() checks the address against USER_PTR_MAX, a
    // runtime constant vmlinux writes into a movabs at boot: the copy reads USER_PTR_MAX
    // (exported) instead, and the runtime_ptr_USER_PTR_MAX entry is not carried.
    name: "runtime-ptr",
    file: "fs/readdir.c",
    edit: { patch: join(PATCHES, "runtime-const.patch") },
    changed: ["filldir64"],
    refers: { ".text.filldir64": ["USER_PTR_MAX"] },
    entries: { runtime_ptr_USER_PTR_MAX: 0 },
  },
  {
    // d_hash()'s shift by d_hash_shift is an immediate vmlinux writes at boot: refused.
    name: "runtime-shift",
    file: "fs/dcache.c",
    edit: (t) =>
      t.replace(
        "\tstruct hlist_bl_head *b = d_hash(entry->d_name.hash);\n\n\thlist_bl_lock(b);",
        "\tstruct hlist_bl_head *b = d_hash(entry->d_name.hash);\n\n\tentry->d_time = 1;\n\thlist_bl_lock(b);",
      ),
    changed: [],
    error: {
      code: "DIFF_UNSUPPORTED_SECTION",
      message:
        /^Cannot patch __d_rehash: it uses the runtime constant shift d_hash_shift \(runtime_shift_d_hash_shift\): its count is an instruction immediate that only vmlinux writes/,
    },
  },
  {
    // parse_args() has four pr_debug() sites (one its own, three of parse_one(), inlined): each
    // descriptor is copied into the output's __dyndbg, each __jump_table entry names the copy's
    // key. A line added at the top moves every other descriptor's line: no other change.
    name: "dyndbg",
    file: "kernel/params.c",
    edit: (t) =>
      t
        .replace(
          "#include <linux/kernel.h>\n",
          "#include <linux/kernel.h>\n/* every pr_debug() below moves */\n",
        )
        .replace(
          "parsing ARGS: '%s'\\n\", doing, args);",
          "parsing ARGS (patched): '%s'\\n\", doing, args);",
        ),
    changed: ["parse_args"],
    refers: {
      __jump_table: ["__dyndbg"],
      ".text.parse_args": ["__dyndbg"],
      __dyndbg: [".rodata.parse_args.str1.8"],
    },
    entries: { __jump_table: 4, __dyndbg: 4 },
  },
];

describe("differ special sections on lab kernel objects", {
  skip: labReady ? false : "the lab kernel is not built",
}, () => {
  for (const c of CASES) {
    test(`${c.name}: ${c.file} ${c.error ? `refused (${c.error.code})` : `changes ${c.changed.join(", ")}`}`, async () => {
      const { symbols, exports, sizes } = await labTarget();
      const pair = await buildPair(work, c.file, c.name, c.edit);
      if (c.staticCallSites) {
        const objtool = join(buildDir, "tools", "objtool", "objtool");
        for (const o of [pair.orig, pair.patched])
          await execCheck(objtool, ["--static-call", o], { what: `objtool --static-call ${o}` });
      }
      const orig = readElf(readFileSync(pair.orig), pair.orig);
      const patched = readElf(readFileSync(pair.patched), pair.patched);
      const options = { symbols, exports, entrySizes: sizes, target: "vmlinux" };
      if (c.error) {
        const { code, message } = c.error;
        assert.throws(
          () => diffObjects(orig, patched, options),
          (e: unknown) => isDiffError(e) && e.code === code && message.test(e.message),
        );
        return;
      }
      const result = diffObjects(orig, patched, options);
      assert.deepEqual(result.report.changed.map((f) => f.name).sort(), [...c.changed].sort());
      const out = readElf(writeElf(result.output!), "out.o");
      for (const [sec, names] of Object.entries(c.refers ?? {})) {
        const got = relocNames(out, sec);
        for (const n of names) assert.ok(got.includes(n), `${sec} refers to ${n} (${got.join(", ")})`);
      }
      // sizeof(struct _ddebug) on x86-64 with JUMP_LABEL: four pointers, the bit fields, a static key.
      const entry: Record<string, number | undefined> = {
        __jump_table: sizes.jump,
        ".static_call_sites": sizes.static_call,
        __dyndbg: 56,
      };
      for (const [sec, n] of Object.entries(c.entries ?? {}))
        assert.equal(sizeOf(out, sec), n * (entry[sec] ?? 1), `${sec}: ${n} entries`);
    });
  }
});
