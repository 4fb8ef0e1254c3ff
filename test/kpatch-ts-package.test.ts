/**
 * npm run deb: the package of kpatch-ts itself, built from this build (dist/) and checked with
 * dpkg-deb and lintian; its kpatch runs from the unpacked tree (every import it needs is
 * there). Never installed here: the postinst registers an init script.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { importClosure } from "../src/debian/kpatch-ts-package.js";

const REPO = join(import.meta.dirname, "..", "..");
const MAINTAINER = "Jane Admin <jane@example.org>";
const noLintian =
  spawnSync("lintian", ["--version"]).status === 0
    ? false
    : "lintian is not installed (apt-get install lintian)";
const version = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

describe("the kpatch-ts package (npm run deb)", () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-ts-deb-"));
  const deb = join(out, `kpatch-ts_${version}_all.deb`);
  const root = join(out, "root");
  after(() => rmSync(out, { recursive: true, force: true }));

  before(() => {
    const r = spawnSync(
      "node",
      [join(REPO, "dist", "src", "cli", "kpatch-deb.js"), "-o", out, "--maintainer", MAINTAINER],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), deb);
    execFileSync("dpkg-deb", ["-x", deb, root]);
  });

  it("is kpatch-ts at the project's version, for all architectures, on Node 20", () => {
    const f = (name: string) => execFileSync("dpkg-deb", ["-f", deb, name], { encoding: "utf8" }).trim();
    assert.equal(f("Package"), "kpatch-ts");
    assert.equal(f("Version"), version);
    assert.equal(f("Architecture"), "all");
    assert.equal(f("Depends"), "nodejs (>= 18.20)", "Debian 12's own nodejs is 18.20.4");
    assert.equal(f("Maintainer"), MAINTAINER);
  });

  it("ships the kpatch command's import closure, the units and the init script (a conffile)", () => {
    const listed = execFileSync("dpkg-deb", ["-c", deb], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.startsWith("-"))
      .map((l) => l.split(/\s+/).pop()!.slice(1));
    const closure = importClosure(join(REPO, "dist", "src", "cli", "kpatch.js"));
    // iced-x86: kpatch load's run-pre check decodes the instructions it compares.
    assert.deepEqual(closure.packages, ["iced-x86"]);
    assert.ok(closure.files.some((f) => f.endsWith("cli/kpatch-help.js")));
    assert.ok(!closure.files.some((f) => f.includes("/lab/") || f.includes("/kpatch-build/")));
    const js = listed.filter((p) => p.startsWith("/usr/lib/kpatch-ts/dist/")).sort();
    assert.deepEqual(js, closure.files.map((f) => `/usr/lib/kpatch-ts/${relative(REPO, f)}`).sort());
    for (const u of ["kpatch.service", "kpatch-confirm.service", "kpatch-confirm.timer"])
      assert.ok(
        readFileSync(join(root, "usr/lib/systemd/system", u)).equals(
          readFileSync(join(REPO, "data/kpatch", u)),
        ),
      );
    assert.ok(
      readFileSync(join(root, "etc/init.d/kpatch")).equals(
        readFileSync(join(REPO, "data/kpatch/kpatch.init")),
      ),
    );
    for (const p of [
      "/usr/sbin/kpatch",
      "/usr/share/man/man8/kpatch.8.gz",
      "/usr/share/doc/kpatch-ts/copyright",
    ])
      assert.ok(listed.includes(p), p);
    const e = join(out, "control");
    execFileSync("dpkg-deb", ["-e", deb, e]);
    assert.equal(readFileSync(join(e, "conffiles"), "utf8"), "/etc/init.d/kpatch\n");
    assert.match(readFileSync(join(e, "postinst"), "utf8"), /update-rc\.d kpatch defaults/);
  });

  it("runs: its kpatch prints the version and help from the unpacked tree alone", () => {
    assert.equal(
      readFileSync(join(root, "usr/sbin/kpatch"), "utf8"),
      '#!/bin/sh\nexec node /usr/lib/kpatch-ts/dist/src/cli/kpatch.js "$@"\n',
    );
    const kpatch = join(root, "usr/lib/kpatch-ts/dist/src/cli/kpatch.js");
    assert.equal(
      execFileSync("node", [kpatch, "version"], { encoding: "utf8" }),
      `kpatch (kpatch-ts) ${version}\n`,
    );
    assert.match(
      execFileSync("node", [kpatch, "help", "package"], { encoding: "utf8" }),
      /^Usage: kpatch package/,
    );
  });

  it("is lintian-clean", { skip: noLintian }, () => {
    const r = spawnSync("lintian", ["--fail-on", "error,warning", deb], { encoding: "utf8" });
    assert.deepEqual(
      r.stdout.split("\n").filter((l) => /^[EW]: /.test(l)),
      [],
    );
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
