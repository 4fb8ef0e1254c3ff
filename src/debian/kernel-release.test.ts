import assert from "node:assert/strict";
import test from "node:test";
import { KpatchError } from "../util/errors.js";
import {
  imageRelease,
  parseMadison,
  parseRelease,
  releasePackages,
  releaseSuite,
  unbuildableReason,
  upstreamVersion,
} from "./kernel-release.js";

test("parseRelease() reads Debian's two release shapes and names their packages", () => {
  const r = parseRelease("6.12.117+deb12-amd64");
  assert.deepEqual(r, {
    kernelRelease: "6.12.117+deb12-amd64",
    series: "6.12",
    upstream: "6.12.117",
    flavour: "amd64",
    debian: 12,
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

test("imageRelease() reads the release of an unsigned image package of any Debian amd64 flavour", () => {
  assert.equal(
    imageRelease("linux-image-6.12.117+deb12-amd64-unsigned")?.kernelRelease,
    "6.12.117+deb12-amd64",
  );
  assert.equal(imageRelease("linux-image-6.1.0-57-amd64-unsigned")?.series, "6.1");
  assert.equal(imageRelease("linux-image-6.12.117+deb12-cloud-amd64-unsigned")?.flavour, "cloud-amd64");
  assert.equal(imageRelease("linux-image-6.12.117+deb12-rt-amd64-unsigned")?.flavour, "rt-amd64");
  for (const name of [
    "linux-image-6.12.117+deb12-amd64",
    "linux-image-6.12.117+deb12/../x-amd64-unsigned",
    "linux-image-6.12.117+deb12-arm64-unsigned",
    "linux-headers-6.12.117+deb12-amd64",
  ]) {
    assert.equal(imageRelease(name), undefined, name);
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

test("upstreamVersion() drops the Debian revision", () => {
  assert.equal(upstreamVersion("6.12.117-1~deb12u1"), "6.12.117");
  assert.equal(upstreamVersion("6.1.158-1"), "6.1.158");
});

test("unbuildableReason() refuses the -rt flavour only, naming the RT featureset's patches", () => {
  assert.equal(unbuildableReason(parseRelease("6.12.117+deb12-amd64")), undefined);
  assert.equal(unbuildableReason(parseRelease("6.12.117+deb12-cloud-amd64")), undefined);
  assert.match(
    unbuildableReason(parseRelease("6.12.117+deb12-rt-amd64")) ?? "",
    /RT featureset's patches \(debian\/patches-rt.*linux-source-6\.12 does not contain/,
  );
});

test("releaseSuite() maps +deb12 and 6.1.0-N to bookworm, +deb13 to trixie, each with its security suite", () => {
  const suites = (kver: string) => releaseSuite(parseRelease(kver)).suites;
  assert.deepEqual(suites("6.12.117+deb12-amd64"), ["bookworm", "bookworm-security"]);
  assert.deepEqual(suites("6.1.0-57-cloud-amd64"), ["bookworm", "bookworm-security"]);
  assert.deepEqual(suites("6.12.118+deb13-amd64"), ["trixie", "trixie-security"]);
  assert.deepEqual(suites("6.12.118+deb13-rt-amd64"), ["trixie", "trixie-security"]);
  assert.equal(releaseSuite(parseRelease("6.12.118+deb13-cloud-amd64")).codename, "trixie");
  assert.throws(
    () => releaseSuite(parseRelease("6.18.3+deb14-amd64")),
    (e: unknown) =>
      e instanceof KpatchError && e.code === "DISTRO_BAD_RELEASE" && /\+deb14-amd64/.test(e.message),
  );
});
