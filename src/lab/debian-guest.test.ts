import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { rootfsWithImage } from "./debian-guest.js";
import type { DebianRootfs } from "./debian-rootfs.js";

/** A base root file system in `dir` as the cache holds one (its image and ready.json), with or without its tree. */
function base(dir: string, tree: boolean): DebianRootfs {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "rootfs.ext4"), "");
  if (tree) writeFileSync(join(dir, "rootfs.tar"), "not a tar");
  return {
    key: "0123456789ab",
    suite: "bookworm",
    mirror: "http://deb.debian.org/debian",
    packages: [],
    kernelRelease: "6.12.118+deb12-amd64",
    imagePackage: "linux-image-6.12.118+deb12-amd64-unsigned",
    nodeVersion: "18.20.4+dfsg-1~deb12u2",
    sizeBytes: 0,
    timings: {},
    createdAt: "2026-12-07T00:00:00.000Z",
    dir,
    image: join(dir, "rootfs.ext4"),
    ...(tree ? { tree: join(dir, "rootfs.tar") } : {}),
  };
}

test("rootfsWithImage() refuses a base kept without its tree (made before rootfs.tar was kept), naming it, and makes nothing", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "debian-guest-"));
  try {
    const deb = join(tmp, "linux-image.deb");
    writeFileSync(deb, "a package");
    const old = base(join(tmp, "debian-12-0123456789ab"), false);
    await assert.rejects(
      rootfsWithImage(old, { name: "linux-image-6.1.0-57-amd64-unsigned", version: "6.1.192-3", deb }),
      {
        code: process.getuid?.() === 0 ? "LAB_NOT_SET_UP" : "LAB_NOT_ROOT",
        message: /debian-12-0123456789ab/,
      },
    );
    assert.deepEqual(readdirSync(tmp).sort(), ["debian-12-0123456789ab", "linux-image.deb"]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("rootfsWithImage() reports a tree tar cannot unpack as tar's error and leaves no half-made disk", {
  skip: process.getuid?.() === 0 ? false : "chroot and dpkg in the tree need root",
}, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "debian-guest-"));
  try {
    const deb = join(tmp, "linux-image.deb");
    writeFileSync(deb, "a package");
    const broken = base(join(tmp, "debian-12-0123456789ab"), true);
    await assert.rejects(
      rootfsWithImage(broken, { name: "linux-image-6.1.0-57-amd64-unsigned", version: "6.1.192-3", deb }),
      /tar/,
    );
    assert.deepEqual(readdirSync(tmp).sort(), ["debian-12-0123456789ab", "linux-image.deb"]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
