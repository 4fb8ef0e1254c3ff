import assert from "node:assert/strict";
import test from "node:test";
import { parseDryRunLine } from "./distro-objects.js";

const SRC = "/cache/src/6.12.117-1~deb12u1/linux-source-6.12";
const cc = (marker: string, obj: string, src: string, mod: string) =>
  `set -e;  echo '  ${marker} ${obj}';   trap 'rm -f ${obj}' HUP; gcc -nostdinc -D__KERNEL__ -O2 -DKBUILD_BASENAME='"x"' -DKBUILD_MODNAME='"${mod}"' -D__KBUILD_MODNAME=kmod_${mod} -c -o ${obj} ${src}  ; scripts/basic/fixdep`;

test("parseDryRunLine() takes the object, its source and its target from kbuild's dry run", () => {
  assert.deepEqual(parseDryRunLine(cc("CC [M] ", "fs/ext4/inode.o", `${SRC}/fs/ext4/inode.c`, "ext4"), SRC), {
    path: "fs/ext4/inode.o",
    source: "fs/ext4/inode.c",
    target: "ext4",
  });
  assert.deepEqual(parseDryRunLine(cc("CC     ", "kernel/sys.o", `${SRC}/kernel/sys.c`, "sys"), SRC), {
    path: "kernel/sys.o",
    source: "kernel/sys.c",
    target: "vmlinux",
  });
  // A module name with a dash is the kernel's name with an underscore.
  assert.equal(
    parseDryRunLine(cc("CC [M] ", "drivers/a/b.o", `${SRC}/drivers/a/b.c`, "intel-uncore"), SRC)?.target,
    "intel_uncore",
  );
});

test("parseDryRunLine() skips host programs, module link stubs and boot code", () => {
  assert.equal(
    parseDryRunLine("set -e;  echo '  HOSTCC  scripts/mod/modpost.o'; gcc -c -o x.o x.c", SRC),
    undefined,
  );
  assert.equal(
    parseDryRunLine(cc("CC [M] ", "fs/ext4/ext4.mod.o", "fs/ext4/ext4.mod.c", "ext4"), SRC),
    undefined,
  );
  assert.equal(
    parseDryRunLine(cc("CC     ", "arch/x86/boot/cpu.o", `${SRC}/arch/x86/boot/cpu.c`, "cpu"), SRC),
    undefined,
  );
});
