import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import {
  findImageModule,
  findInModulesOrder,
  loadOrder,
  parseBuiltin,
  parseModulesDep,
  readModule,
  uncompressedName,
} from "./image-modules.js";

// The shape of Debian 6.12's modules.dep (depmod output: every module needed, direct or not).
const DEP = `kernel/fs/netfs/netfs.ko.xz:
kernel/net/9p/9pnet.ko.xz: kernel/fs/netfs/netfs.ko.xz
kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/lib/crc16.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/fs/jbd2/jbd2.ko.xz:
`;

test("loadOrder() puts every dependency before its user, each module once", () => {
  const order = loadOrder(parseModulesDep(DEP), new Set(), ["9pnet_virtio", "9p", "ext4"]);
  assert.deepEqual(order, [
    "kernel/fs/netfs/netfs.ko.xz",
    "kernel/net/9p/9pnet.ko.xz",
    "kernel/net/9p/9pnet_virtio.ko.xz",
    "kernel/fs/9p/9p.ko.xz",
    "kernel/lib/crc16.ko.xz",
    "kernel/fs/mbcache.ko.xz",
    "kernel/fs/jbd2/jbd2.ko.xz",
    "kernel/fs/ext4/ext4.ko.xz",
  ]);
});

test("loadOrder() skips a module built into the kernel and names one that is nowhere", () => {
  const builtin = parseBuiltin("kernel/drivers/virtio/virtio_pci.ko\n");
  assert.deepEqual(loadOrder(parseModulesDep(DEP), builtin, ["virtio_pci"]), []);
  assert.throws(
    () => loadOrder(parseModulesDep(DEP), builtin, ["virtio_blk"]),
    (e: Error & { code?: string }) => e.code === "DISTRO_MODULE" && /virtio_blk/.test(e.message),
  );
});

test("uncompressedName() drops the compression suffix only", () => {
  assert.equal(uncompressedName("kernel/fs/9p/9p.ko.xz"), "kernel/fs/9p/9p.ko");
  assert.equal(uncompressedName("kernel/fs/9p/9p.ko.zst"), "kernel/fs/9p/9p.ko");
  assert.equal(uncompressedName("kernel/fs/9p/9p.ko"), "kernel/fs/9p/9p.ko");
});

test("findInModulesOrder() finds a module by the kernel's name in a build tree's or an image's list", () => {
  const order = "fs/ext4/ext4.o\narch/x86/kvm/kvm-intel.o\n";
  assert.equal(findInModulesOrder(order, "kvm_intel"), "arch/x86/kvm/kvm-intel.o");
  assert.equal(findInModulesOrder("kernel/fs/ext4/ext4.ko\n", "ext4"), "kernel/fs/ext4/ext4.ko");
  assert.equal(findInModulesOrder(order, "kvm"), undefined);
});

test("findImageModule() finds the shipped file, compressed or not, and names what is missing", () => {
  const dir = mkdtempSync(join(tmpdir(), "image-modules-"));
  try {
    mkdirSync(join(dir, "kernel", "arch", "x86", "kvm"), { recursive: true });
    writeFileSync(
      join(dir, "modules.order"),
      "kernel/arch/x86/kvm/kvm.ko\nkernel/arch/x86/kvm/kvm-intel.ko\n",
    );
    writeFileSync(join(dir, "kernel", "arch", "x86", "kvm", "kvm-intel.ko.xz"), "");
    assert.equal(findImageModule(dir, "kvm_intel"), join(dir, "kernel/arch/x86/kvm/kvm-intel.ko.xz"));
    assert.throws(() => findImageModule(dir, "kvm"), /Cannot find .*kvm\.ko \(or a compressed copy\)/);
    assert.throws(
      () => findImageModule(dir, "ext4"),
      (e: Error & { code?: string }) => e.code === "TARGET_NOT_FOUND" && /module ext4 in/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("readModule() decompresses .ko.xz and reads .ko as it is", () => {
  const dir = mkdtempSync(join(tmpdir(), "image-modules-"));
  try {
    const bytes = Buffer.from("\x7fELF module bytes");
    writeFileSync(join(dir, "m.ko"), bytes);
    execFileSync("xz", ["-k", join(dir, "m.ko")]);
    assert.deepEqual(Buffer.from(readModule(join(dir, "m.ko.xz"))), bytes);
    assert.deepEqual(Buffer.from(readModule(join(dir, "m.ko"))), bytes);
    writeFileSync(join(dir, "bad.ko.xz"), "not xz");
    assert.throws(() => readModule(join(dir, "bad.ko.xz")), /Cannot decompress .*bad\.ko\.xz with xz/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
