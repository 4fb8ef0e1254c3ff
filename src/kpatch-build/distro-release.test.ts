import assert from "node:assert/strict";
import test from "node:test";
import { KpatchError } from "../util/errors.js";
import { parseRelease, releasePackages } from "./distro-release.js";

test("parseRelease() reads Debian's two release shapes and names their packages", () => {
  const r = parseRelease("6.12.117+deb12-amd64");
  assert.deepEqual(r, {
    kver: "6.12.117+deb12-amd64",
    series: "6.12",
    upstream: "6.12.117",
    flavour: "amd64",
  });
  assert.deepEqual(releasePackages(r), {
    image: "linux-image-6.12.117+deb12-amd64-unsigned",
    headers: "linux-headers-6.12.117+deb12-amd64",
    source: "linux-source-6.12",
  });
  const old = parseRelease("6.1.0-57-cloud-amd64");
  assert.equal(old.series, "6.1");
  assert.equal(old.upstream, undefined);
  assert.equal(old.flavour, "cloud-amd64");
});

test("parseRelease() refuses anything that could reach a path or is not a Debian amd64 release", () => {
  for (const bad of [
    "../../etc",
    "6.12.117+deb12-amd64/../x",
    "6.18.44-fc-v669",
    "6.12.117",
    "",
    "6.1.0-57-arm64",
  ]) {
    assert.throws(
      () => parseRelease(bad),
      (e: unknown) => e instanceof KpatchError && e.code === "DISTRO_BAD_RELEASE",
    );
  }
});
