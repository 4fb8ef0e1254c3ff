import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { isKpatchError } from "../util/errors.js";
import { kernelObjects, parseKbuildCmd, readKbuildCmd } from "./kbuild-tree.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-kbuild-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("parseKbuildCmd() reads 6.12's savedcmd_ and 6.1's cmd_ records of exactly that object", () => {
  const text = [
    "savedcmd_fs/proc/cmdline.o := gcc -c -o fs/proc/cmdline.o /src/fs/proc/cmdline.c",
    "",
    "source_fs/proc/cmdline.o := /src/fs/proc/cmdline.c",
    "",
    "deps_fs/proc/cmdline.o := \\",
    "  /src/include/linux/kconfig.h \\",
    "    $(wildcard include/config/CPU_BIG_ENDIAN) \\",
    "  include/generated/autoconf.h \\",
    "",
    "fs/proc/cmdline.o: $(deps_fs/proc/cmdline.o)",
  ].join("\n");
  assert.deepEqual(parseKbuildCmd(text, "fs/proc/cmdline.o"), {
    command: "gcc -c -o fs/proc/cmdline.o /src/fs/proc/cmdline.c",
    source: "/src/fs/proc/cmdline.c",
    deps: ["/src/include/linux/kconfig.h", "include/config/CPU_BIG_ENDIAN", "include/generated/autoconf.h"],
  });
  assert.deepEqual(parseKbuildCmd("cmd_kernel/exit.o := gcc -c kernel/exit.c\n", "kernel/exit.o"), {
    command: "gcc -c kernel/exit.c",
    source: undefined,
    deps: [],
  });
  // A dot in the object path is not a regular-expression wildcard.
  assert.equal(parseKbuildCmd(text, "fs/proc/cmdlineXo").command, undefined);
});

test("readKbuildCmd() says BUILD_NO_COMMAND for a missing record or one without a command", () => {
  mkdirSync(join(dir, "kernel"));
  writeFileSync(join(dir, "kernel", ".exit.o.cmd"), "source_kernel/exit.o := kernel/exit.c\n");
  for (const obj of ["kernel/exit.o", "kernel/fork.o"]) {
    assert.throws(
      () => readKbuildCmd(dir, obj),
      (e: unknown) => isKpatchError(e) && e.code === "BUILD_NO_COMMAND" && e.message.includes(obj),
    );
  }
});

test("kernelObjects() keeps kbuild's name of an object listed from a parent Makefile, and its module", () => {
  const tree = join(dir, "parent-listed");
  const obj = "arch/x86/kvm/../../../virt/kvm/kvm_main.o";
  mkdirSync(join(tree, "virt", "kvm"), { recursive: true });
  mkdirSync(join(tree, "arch", "x86", "kvm"), { recursive: true });
  writeFileSync(
    join(tree, "virt", "kvm", ".kvm_main.o.cmd"),
    `savedcmd_${obj} := gcc -D__KERNEL__ -DMODULE -c -o ${obj} /src/${obj.replace(/\.o$/, ".c")}\n\nsource_${obj} := /src/arch/x86/kvm/../../../virt/kvm/kvm_main.c\n`,
  );
  writeFileSync(join(tree, "modules.order"), "arch/x86/kvm/kvm.o\n");
  writeFileSync(join(tree, "arch", "x86", "kvm", "kvm.mod"), `${obj}\n`);
  assert.deepEqual(
    kernelObjects(tree).map((o) => o.obj),
    [{ path: obj, source: "/src/virt/kvm/kvm_main.c", target: "kvm" }],
  );
});
