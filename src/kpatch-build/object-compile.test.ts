import assert from "node:assert/strict";
import test from "node:test";
import {
  compilerArgs,
  macrosIncludeDir,
  SECTION_FLAGS,
  sectionCommand,
  splitShell,
} from "./object-compile.js";

const GCC =
  "gcc -Wp,-MMD,samples/kobject/.kobject-example.o.d -nostdinc -O2 -DMODULE -c -o samples/kobject/kobject-example.o /src/samples/kobject/kobject-example.c";
const OBJTOOL =
  " ./tools/objtool/objtool --hacks=jump_label --orc --rethunk --link --module samples/kobject/kobject-example.o";

test("sectionCommand() adds the section flags, writes elsewhere, drops the dep file and a link-time objtool", () => {
  const c = sectionCommand(`${GCC} ;${OBJTOOL}`, "samples/kobject/kobject-example.o", "/work/o.o");
  assert.equal(
    c,
    `gcc ${SECTION_FLAGS} -I${macrosIncludeDir()} -nostdinc -O2 -DMODULE -c -o /work/o.o /src/samples/kobject/kobject-example.c `,
  );
});

test("sectionCommand() replaces the object path only as a whole word", () => {
  const c = sectionCommand("gcc -c -o fs/a.o fs/a.o.c", "fs/a.o", "/w/a.o");
  assert.match(c, / -o \/w\/a\.o fs\/a\.o\.c$/);
});

test("sectionCommand() keeps a per-object objtool pass (6.1), pointed at the new output", () => {
  const c = sectionCommand(
    "gcc -c -o fs/a.o fs/a.c; ./tools/objtool/objtool --orc --rethunk --module fs/a.o",
    "fs/a.o",
    "/w/a.o",
  );
  assert.match(c, /; \.\/tools\/objtool\/objtool --orc --rethunk --module \/w\/a\.o$/);
});

test("compilerArgs() drops the dependency file, the source and the output of a kbuild command", () => {
  const cmd =
    "gcc -Wp,-MMD,kernel/.exit.o.d -nostdinc -DKBUILD_MODNAME='\"exit\"' -O2 -c -o kernel/exit.o /src/kernel/exit.c";
  assert.deepEqual(compilerArgs(cmd, { source: "/tmp/p.c", out: "/tmp/p.o", modname: "kpatch_sizes" }), [
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
