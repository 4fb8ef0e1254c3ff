import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import type { DebianPackage } from "../debian/debian-package.js";
import {
  type DistroPackages,
  findImagePackage,
  headersDependencies,
  joinHeaders,
  kbuildGone,
} from "./distro-packages.js";

test("kbuildGone() says the exact kbuild is gone and names what apt offers instead, never using it", () => {
  const madison = [
    "linux-kbuild-6.1 |  6.1.192-3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages",
    "linux-kbuild-6.1 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages",
  ].join("\n");
  assert.equal(
    kbuildGone("linux-kbuild-6.1", "6.1.190-1", madison),
    "linux-kbuild-6.1=6.1.190-1 is gone from apt (it offers 6.1.192-3, 6.1.176-1; another version's kbuild is never used for a module build)",
  );
  assert.equal(kbuildGone("linux-kbuild-6.1", "6.1.192-3", madison), undefined);
  assert.match(kbuildGone("linux-kbuild-6.1", "6.1.190-1", "") ?? "", /offers no version/);
});

test("headersDependencies() finds -common and kbuild in a headers package's Depends", () => {
  const depends =
    "linux-base (>= 4.12~), linux-headers-6.12.117+deb12-common (= 6.12.117-1~deb12u1), linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-amd64-unsigned (= 6.12.117-1~deb12u1), linux-kbuild-6.12.117+deb12, gcc-12";
  assert.deepEqual(headersDependencies(depends, "linux-headers-6.12.117+deb12-amd64"), {
    common: "linux-headers-6.12.117+deb12-common",
    kbuild: "linux-kbuild-6.12.117+deb12",
  });
  const rt =
    "linux-base (>= 4.12~), linux-headers-6.12.117+deb12-common-rt (= 6.12.117-1~deb12u1), linux-kbuild-6.12.117+deb12, gcc-12";
  assert.deepEqual(headersDependencies(rt, "linux-headers-6.12.117+deb12-rt-amd64"), {
    common: "linux-headers-6.12.117+deb12-common-rt",
    kbuild: "linux-kbuild-6.12.117+deb12",
  });
  assert.throws(
    () => headersDependencies("gcc-12", "h"),
    (e: Error & { code?: string }) => e.code === "DISTRO_HEADERS",
  );
});

test("findImagePackage() names the series and version apt has no image for", async () => {
  await assert.rejects(findImagePackage("6.12", "6.12.0-0~none"), (e: Error & { code?: string }) => {
    assert.equal(e.code, "DISTRO_NO_IMAGE");
    assert.match(e.message, /6\.12 amd64 kernel image at version 6\.12\.0-0~none/);
    return true;
  });
});

test("joinHeaders() leaves nothing behind when the headers' Makefile includes no -common", async () => {
  const dir = mkdtempSync(join(tmpdir(), "join-headers-"));
  try {
    const pkg = (name: string, files: Record<string, string>): DebianPackage => {
      const root = join(dir, name);
      for (const [f, text] of Object.entries(files)) {
        mkdirSync(join(root, f, ".."), { recursive: true });
        writeFileSync(join(root, f), text);
      }
      return { name, version: "1", deb: `${root}.deb`, root };
    };
    const kernelRelease = "6.12.117+deb12-amd64";
    const pkgs: DistroPackages & { kbuild: DebianPackage } = {
      kernelRelease,
      version: "1",
      image: pkg("image", {}),
      headers: pkg("headers", {
        [`usr/src/linux-headers-${kernelRelease}/Makefile`]: "include /elsewhere/Makefile\n",
      }),
      common: pkg("common", { "usr/src/linux-headers-6.12.117+deb12-common/Makefile": "all:\n" }),
      kbuild: pkg("kbuild", { "usr/lib/linux-kbuild-6.12.117+deb12/scripts/x": "" }),
    };
    const out = join(dir, "joined");
    await assert.rejects(
      joinHeaders(pkgs, out),
      (e: Error & { code?: string }) => e.code === "DISTRO_HEADERS",
    );
    assert.deepEqual(readdirSync(dir).sort(), ["common", "headers", "kbuild"]);

    writeFileSync(
      join(dir, "headers", "usr", "src", `linux-headers-${kernelRelease}`, "Makefile"),
      "include /usr/src/linux-headers-6.12.117+deb12-common/Makefile\n",
    );
    const build = await joinHeaders(pkgs, out);
    assert.equal(
      readFileSync(join(build, "Makefile"), "utf8"),
      `include ${out}/usr/src/linux-headers-6.12.117+deb12-common/Makefile\n`,
    );
    // The package's own Makefile is untouched (the joined one was unlinked, not written through).
    assert.match(
      readFileSync(join(dir, "headers", "usr", "src", `linux-headers-${kernelRelease}`, "Makefile"), "utf8"),
      /^include \/usr\/src/,
    );
    assert.ok(existsSync(join(out, "usr", "lib", "linux-kbuild-6.12.117+deb12", "scripts", "x")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
