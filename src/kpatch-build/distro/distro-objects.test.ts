import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { failedTargets, parseDryRunLine } from "./distro-objects.js";

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

test("parseDryRunLine() keeps kbuild's name of an object listed from a parent Makefile, its source in the tree", () => {
  // virt/kvm/Makefile.kvm: kvm-y := $(KVM)/kvm_main.o with KVM := ../../../virt/kvm, from arch/x86/kvm.
  const obj = "arch/x86/kvm/../../../virt/kvm/kvm_main.o";
  assert.deepEqual(
    parseDryRunLine(cc("CC [M] ", obj, `${SRC}/arch/x86/kvm/../../../virt/kvm/kvm_main.c`, "kvm"), SRC),
    {
      path: obj,
      source: "virt/kvm/kvm_main.c",
      target: "kvm",
    },
  );
  assert.deepEqual(
    parseDryRunLine(
      cc("CC [M] ", "arch/x86/kvm/vmx/vmx.o", `${SRC}/arch/x86/kvm/vmx/vmx.c`, "kvm-intel"),
      SRC,
    ),
    { path: "arch/x86/kvm/vmx/vmx.o", source: "arch/x86/kvm/vmx/vmx.c", target: "kvm_intel" },
  );
  // An object kbuild links into two modules: KBUILD_MODNAME names both.
  assert.equal(
    parseDryRunLine(cc("CC [M] ", "drivers/x/c.o", `${SRC}/drivers/x/c.c`, "a-b:c"), SRC)?.target,
    "a_b:c",
  );
});

test("parseDryRunLine() skips host programs and module link stubs, keeps boot code (refused later, by name)", () => {
  assert.equal(
    parseDryRunLine("set -e;  echo '  HOSTCC  scripts/mod/modpost.o'; gcc -c -o x.o x.c", SRC),
    undefined,
  );
  assert.equal(
    parseDryRunLine(cc("CC [M] ", "fs/ext4/ext4.mod.o", "fs/ext4/ext4.mod.c", "ext4"), SRC),
    undefined,
  );
  assert.equal(
    parseDryRunLine(cc("CC     ", "arch/x86/boot/cpu.o", `${SRC}/arch/x86/boot/cpu.c`, "cpu"), SRC)?.source,
    "arch/x86/boot/cpu.c",
  );
});

test("failedTargets() reads the targets make -k could not go through", () => {
  const stderr = `make[3]: *** No rule to make target 'debian/certs/debian-uefi-certs.pem', needed by 'certs/x509_certificate_list'.
make[3]: *** [scripts/Makefile.build:478: certs/x509_certificate_list] Error 2
make[2]: *** [scripts/Makefile.build:478: certs] Error 2
make[1]: *** [/src/Makefile:1944: .] Error 2
make: *** [Makefile:224: __sub-make] Error 2
`;
  assert.deepEqual(failedTargets(stderr), [".", "__sub-make", "certs", "certs/x509_certificate_list"]);
});

test("parseDryRunLine() takes the source of a tree reached through a symlink, which kbuild names by its real path", () => {
  // The top Makefile's abs_srctree is $(realpath ...): a cache behind a symlink (~/.cache on
  // another disk) had every source left absolute, and "not built by this config" followed.
  const dir = mkdtempSync(join(tmpdir(), "distro-objects-"));
  try {
    const real = join(dir, "real", "linux-source-6.12");
    mkdirSync(real, { recursive: true });
    symlinkSync(join(dir, "real"), join(dir, "link"));
    const viaLink = join(dir, "link", "linux-source-6.12");
    assert.deepEqual(
      parseDryRunLine(cc("CC     ", "fs/proc/cmdline.o", `${real}/fs/proc/cmdline.c`, "cmdline"), viaLink),
      {
        path: "fs/proc/cmdline.o",
        source: "fs/proc/cmdline.c",
        target: "vmlinux",
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
