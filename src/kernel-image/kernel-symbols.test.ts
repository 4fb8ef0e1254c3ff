import assert from "node:assert/strict";
import { test } from "node:test";
import { isKpatchError } from "../util/errors.js";
import { KernelSymbols } from "./kernel-symbols.js";

const KALLSYMS = [
  "ffffffff81000000 T _stext",
  "ffffffff81000100 t helper",
  "ffffffff81000200 T unique_fn",
  "ffffffff81000300 t helper",
  "ffffffff81000400 d helper",
  "ffffffffc0000000 t helper\t[ext4]",
  "ffffffffc0000100 T ext4_fn\t[ext4]",
  "",
].join("\n");

test("fromProcKallsyms(): vmlinux's symbols without a module's, sympos in kallsyms order", () => {
  const k = KernelSymbols.fromProcKallsyms(KALLSYMS);
  assert.equal(k.size, 5);
  assert.equal(k.has("ext4_fn"), false);
  const helpers = k.named("helper");
  assert.deepEqual(
    helpers.map((s) => [s.address, s.type, k.sympos(s)]),
    [
      [0xffffffff81000100n, "t", 1],
      [0xffffffff81000300n, "t", 2],
      [0xffffffff81000400n, "d", 3],
    ],
  );
  assert.equal(k.sympos(k.named("unique_fn")[0]!), 0);
});

test("fromProcKallsyms(): a module's symbols with { module }", () => {
  const k = KernelSymbols.fromProcKallsyms(KALLSYMS, { module: "ext4" });
  assert.deepEqual(
    k.symbols.map((s) => s.name),
    ["helper", "ext4_fn"],
  );
  assert.equal(k.sympos(k.named("helper")[0]!), 0);
});

test("find() and lookup() answer as klp_find_object_symbol does", () => {
  const k = KernelSymbols.fromProcKallsyms(KALLSYMS);
  assert.equal(k.find("helper"), undefined, "sympos 0 of a name that is not unique");
  assert.equal(k.find("helper", 2)?.address, 0xffffffff81000300n);
  assert.equal(k.find("helper", 4), undefined);
  assert.equal(k.find("unique_fn")?.address, 0xffffffff81000200n);
  assert.equal(k.find("unique_fn", 1)?.address, 0xffffffff81000200n);
  for (const [name, pos, code] of [
    ["nothing", 0, "KSYMS_NOT_FOUND"],
    ["helper", 0, "KSYMS_AMBIGUOUS"],
    ["helper", 9, "KSYMS_NOT_FOUND"],
  ] as const) {
    assert.throws(
      () => k.lookup(name, pos),
      (e) => isKpatchError(e) && e.code === code && e.message.includes(name),
    );
  }
});

test("extent(): up to the next higher address, undefined for the last symbol", () => {
  const k = KernelSymbols.fromProcKallsyms(KALLSYMS);
  assert.equal(k.extent(k.named("_stext")[0]!), 0x100n);
  assert.equal(k.extent(k.named("helper")[2]!), undefined);
});

test("fromSystemMap(): leaves out what scripts/kallsyms.c leaves out of kallsyms", () => {
  const k = KernelSymbols.fromSystemMap(
    [
      "0000000000a00000 A text_size",
      "ffffffff81000000 T _stext",
      "                 U undefined_one",
      "ffffffff81000010 ? __nosave_begin",
      "0000000000000000 w weak_undefined",
      "ffffffff81000020 N debug_thing",
    ].join("\n"),
  );
  assert.deepEqual(
    k.symbols.map((s) => `${s.type} ${s.name}`),
    ["T _stext", "? __nosave_begin"],
  );
});
