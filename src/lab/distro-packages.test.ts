import assert from "node:assert/strict";
import test from "node:test";
import { headersDependencies, imageRelease, parseMadison } from "./distro-packages.js";

test("imageRelease() takes plain amd64 images of the series only", () => {
  assert.equal(imageRelease("linux-image-6.12.117+deb12-amd64-unsigned", "6.12"), "6.12.117+deb12-amd64");
  assert.equal(imageRelease("linux-image-6.1.0-57-amd64-unsigned", "6.1"), "6.1.0-57-amd64");
  for (const [name, series] of [
    ["linux-image-6.12.117+deb12-cloud-amd64-unsigned", "6.12"],
    ["linux-image-6.12.117+deb12-rt-amd64-unsigned", "6.12"],
    ["linux-image-6.12.117+deb12-amd64", "6.12"],
    ["linux-image-6.1.0-57-amd64-unsigned", "6.12"],
    ["linux-image-6.12.117+deb12-amd64-unsigned", "6.1"],
    ["linux-image-6.12.117+deb12/../x-amd64-unsigned", "6.12"],
  ] as const) {
    assert.equal(imageRelease(name, series), undefined, name);
  }
});

test("parseMadison() reads apt-cache madison's rows", () => {
  const text = ` linux-image-6.1.0-57-amd64-unsigned |  6.1.192-3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-6.12.117+deb12-amd64-unsigned | 6.12.117-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
`;
  assert.deepEqual(parseMadison(text), [
    { pkg: "linux-image-6.1.0-57-amd64-unsigned", version: "6.1.192-3" },
    { pkg: "linux-image-6.12.117+deb12-amd64-unsigned", version: "6.12.117-1~deb12u1" },
  ]);
});

test("headersDependencies() finds -common and kbuild in a headers package's Depends", () => {
  const depends =
    "linux-base (>= 4.12~), linux-headers-6.12.117+deb12-common (= 6.12.117-1~deb12u1), linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-amd64-unsigned (= 6.12.117-1~deb12u1), linux-kbuild-6.12.117+deb12, gcc-12";
  assert.deepEqual(headersDependencies(depends, "linux-headers-6.12.117+deb12-amd64"), {
    common: "linux-headers-6.12.117+deb12-common",
    kbuild: "linux-kbuild-6.12.117+deb12",
  });
  assert.throws(
    () => headersDependencies("gcc-12", "h"),
    (e: Error & { code?: string }) => e.code === "DISTRO_HEADERS",
  );
});
