import assert from "node:assert/strict";
import test from "node:test";
import { hostCodename } from "../debian/apt-sources.js";
import { rootfsDir } from "./debian-rootfs.js";
import type { DistroLab } from "./distro.js";

/** The fields of a stock kernel's setup that the root file system is made from. */
function stock(suite?: string): DistroLab {
  const deb = suite ? "deb13" : "deb12";
  return {
    image: `linux-image-6.12.118+${deb}-amd64-unsigned`,
    sourceVersion: suite ? "6.12.118-1" : "6.12.118-1~deb12u1",
    ...(suite ? { suite } : {}),
  } as DistroLab;
}

test("rootfsDir() makes a Debian 13 (trixie) root file system for --suite trixie's kernel, apart from Debian 12's", () => {
  const trixie = rootfsDir(stock("trixie"));
  assert.equal(trixie.suite.codename, "trixie");
  assert.match(trixie.dir, /\/lab\/debian-13-[0-9a-f]{12}$/);
  const own = rootfsDir(stock());
  assert.equal(own.suite.codename, hostCodename() ?? "bookworm", "this machine's own release otherwise");
  assert.notEqual(own.key, trixie.key);
});

test("rootfsDir() refuses a suite kpatch-ts does not know, naming it", () => {
  assert.throws(() => rootfsDir(stock("sid")), { code: "DISTRO_BAD_RELEASE", message: /'sid'/ });
});
