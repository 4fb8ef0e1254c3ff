import assert from "node:assert/strict";
import { test } from "node:test";
import type { PatchMetadata } from "../kernel/patch-metadata.js";
import { checkAgainstKallsyms } from "./live-check.js";

const KALLSYMS = [
  "ffffffff81000100 t cmdline_proc_show",
  "ffffffff81000200 t show_val_kb",
  "ffffffff81000300 t m_start",
  "ffffffff81000400 t m_start",
  "ffffffffc0000000 t ext4_fn\t[ext4]",
  "",
].join("\n");

function meta(objects: [string, [string, number][]][]): PatchMetadata {
  return {
    objects: objects.map(([name, fns]) => ({
      name,
      functions: fns.map(([n, sympos]) => ({ name: n, sympos, newFunction: `livepatch_${n}` })),
      callbacks: {},
    })),
    replace: true,
    states: [],
  };
}

test("checkAgainstKallsyms(): functions where the livepatch core looks pass", () => {
  const r = checkAgainstKallsyms(
    meta([
      [
        "vmlinux",
        [
          ["cmdline_proc_show", 0],
          ["m_start", 2],
        ],
      ],
      ["ext4", [["ext4_fn", 0]]],
    ]),
    KALLSYMS,
  );
  assert.deepEqual(r, { checked: 3, problems: [], notes: [] });
});

test("checkAgainstKallsyms(): a missing name, sympos 0 of a duplicate, a sympos past the last are named", () => {
  const r = checkAgainstKallsyms(
    meta([
      [
        "vmlinux",
        [
          ["cmdline_proc_show.isra.0", 0],
          ["m_start", 0],
          ["m_start", 3],
        ],
      ],
    ]),
    KALLSYMS,
  );
  assert.equal(r.checked, 0);
  assert.deepEqual(r.problems, [
    "vmlinux: cmdline_proc_show.isra.0: the running kernel has no cmdline_proc_show.isra.0",
    "vmlinux: m_start: the running kernel has 2 functions of that name (sympos 0 needs one)",
    "vmlinux: m_start,3: the running kernel has only 2 functions of that name",
  ]);
});

test("checkAgainstKallsyms(): a target module not loaded is left to the kernel, and said so", () => {
  const r = checkAgainstKallsyms(meta([["xfs", [["xfs_fn", 0]]]]), KALLSYMS);
  assert.deepEqual(r.problems, []);
  assert.match(r.notes[0] ?? "", /xfs is not loaded/);
});
