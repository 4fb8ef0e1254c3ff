import assert from "node:assert/strict";
import { test } from "node:test";
import { isDiffError } from "./diff-error.js";
import { entrySizesFromEnv, parseEntrySizes, probeArgs, splitShell } from "./entry-sizes.js";

test("parseEntrySizes() reads NAME=BYTES lists", () => {
  assert.deepEqual(parseEntrySizes("bug=12,ex=12, alt=14,jump=16"), { bug: 12, ex: 12, alt: 14, jump: 16 });
});

test("parseEntrySizes() rejects unknown names and non-numbers", () => {
  assert.throws(
    () => parseEntrySizes("bugs=12"),
    (e: unknown) => isDiffError(e) && e.code === "DIFF_BAD_INPUT",
  );
  assert.throws(
    () => parseEntrySizes("bug=twelve"),
    (e: unknown) => isDiffError(e) && e.code === "DIFF_BAD_INPUT",
  );
});

test("entrySizesFromEnv() honours kpatch's *_STRUCT_SIZE variables", () => {
  assert.deepEqual(entrySizesFromEnv({ BUG_STRUCT_SIZE: "12", ORC_STRUCT_SIZE: "6", OTHER: "1" }), {
    bug: 12,
    orc: 6,
  });
});

test("probeArgs() drops the dependency file, the source and the output of a kbuild command", () => {
  const cmd =
    "gcc -Wp,-MMD,kernel/.exit.o.d -nostdinc -DKBUILD_MODNAME='\"exit\"' -O2 -c -o kernel/exit.o /src/kernel/exit.c";
  assert.deepEqual(probeArgs(cmd, "/tmp/p.c", "/tmp/p.o"), [
    "gcc",
    "-nostdinc",
    "-O2",
    '-DKBUILD_MODNAME="kpatch_sizes"',
    '-DKBUILD_BASENAME="kpatch_sizes"',
    "-c",
    "-o",
    "/tmp/p.o",
    "/tmp/p.c",
  ]);
  assert.deepEqual(splitShell(`a 'b c' "d\\"e" f\\ g`), ["a", "b c", 'd"e', "f g"]);
});
