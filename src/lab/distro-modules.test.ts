import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { guestModulePath, loadOrder, parseBuiltin, parseModulesDep, readModule } from "./distro-modules.js";

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

test("guestModulePath() drops the compression suffix: the guest gets the module decompressed", () => {
  assert.equal(
    guestModulePath("6.12.117+deb12-amd64", "kernel/fs/9p/9p.ko.xz"),
    "6.12.117+deb12-amd64/kernel/fs/9p/9p.ko",
  );
  assert.equal(guestModulePath("6.1.0-57-amd64", "kernel/fs/9p/9p.ko"), "6.1.0-57-amd64/kernel/fs/9p/9p.ko");
});

test("readModule() decompresses .ko.xz and reads .ko as it is", () => {
  const dir = mkdtempSync(join(tmpdir(), "distro-modules-"));
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
