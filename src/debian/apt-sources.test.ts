import assert from "node:assert/strict";
import test from "node:test";
import { debianMirror, suiteMirrors } from "./apt-sources.js";

test("debianMirror() takes the bookworm mirror of a deb822 file or a one-line sources.list", () => {
  const deb822 = [
    "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main",
    "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main",
  ].join("\n\n");
  assert.equal(debianMirror(deb822), "http://mirror.example/debian");
  assert.equal(
    debianMirror(
      "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\ndeb [arch=amd64] http://ftp.de.debian.org/debian bookworm main\n",
    ),
    "http://ftp.de.debian.org/debian",
  );
  assert.equal(debianMirror("deb http://deb.debian.org/debian trixie main\n"), undefined);
});

test("suiteMirrors() reaches another suite through this machine's archive and security mirrors", () => {
  const deb822 = [
    "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\nComponents: main",
    "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main",
  ].join("\n\n");
  assert.deepEqual(suiteMirrors(deb822, "bookworm"), {
    archive: "http://mirror.example/debian",
    security: "http://sec.example/debian-security",
  });
  assert.deepEqual(suiteMirrors("", undefined), {
    archive: "http://deb.debian.org/debian",
    security: "http://deb.debian.org/debian-security",
  });
});
