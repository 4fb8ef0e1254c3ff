import assert from "node:assert/strict";
import test from "node:test";
import { suiteSources } from "./apt-state.js";
import { parseRelease, releaseSuite } from "./kernel-release.js";

test("suiteSources() lists a release's suite from the archive mirror and its security suite from the security one", () => {
  const suite = releaseSuite(parseRelease("6.12.118+deb13-amd64"));
  const text = suiteSources(suite, {
    archive: "http://a.example/debian",
    security: "http://s.example/debian-security",
  });
  assert.equal(
    text,
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://a.example/debian trixie main\n" +
      "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://s.example/debian-security trixie-security main\n",
  );
});
