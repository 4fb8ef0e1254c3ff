/**
 * kpatch package on real live patch modules (the atomic-replace test modules built against the
 * lab kernel): the .deb's control fields, file list and maintainer scripts as dpkg-deb reads
 * them, and lintian's verdict. Nothing here installs the packages: their scripts load modules,
 * which only a guest may do.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { postinst, postrm, prerm } from "../src/debian/patch-scripts.js";
import { readElf } from "../src/elf/index.js";
import { DEFAULT_SERIES } from "../src/lab/paths.js";
import { findLab } from "../src/lab/setup.js";

const KPATCH = join(import.meta.dirname, "..", "src", "cli", "kpatch.js");
const MAINTAINER = "Jane Admin <jane@example.org>";
const noLab = findLab(DEFAULT_SERIES) ? false : `the ${DEFAULT_SERIES} lab is not set up (kpatch-lab setup)`;
const noLintian =
  spawnSync("lintian", ["--version"]).status === 0
    ? false
    : "lintian is not installed (apt-get install lintian)";

function kpatch(args: string[]) {
  return spawnSync("node", [KPATCH, ...args], { encoding: "utf8", env: { ...process.env, DEBEMAIL: "" } });
}

function field(deb: string, name: string): string {
  return execFileSync("dpkg-deb", ["-f", deb, name], { encoding: "utf8" }).trim();
}

describe("kpatch package", { skip: noLab }, () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-package-"));
  let modules: Record<string, string>;
  let kver = "";
  const deb = (v: string) => join(out, `kpatch-patch-${kver}_${v}_amd64.deb`);

  before(async () => {
    const { testModules, lab } = await import("./helpers/kpatch-fixtures.js");
    modules = await testModules();
    kver = lab.kernelRelease;
    for (const [m, v] of [
      ["kpatch-replace-v9", "1"],
      ["kpatch-replace-v10", "2"],
    ] as const) {
      const r = kpatch(["package", "-V", v, "--maintainer", MAINTAINER, "-o", out, modules[m]!]);
      assert.equal(r.status, 0, r.stderr);
    }
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it("is the kernel's one patch package, its levels as versions; depends on exactly that kernel's image and kpatch-ts", () => {
    assert.equal(field(deb("1"), "Package"), `kpatch-patch-${kver}`);
    assert.equal(field(deb("2"), "Package"), `kpatch-patch-${kver}`);
    assert.equal(field(deb("1"), "Version"), "1");
    assert.equal(field(deb("2"), "Version"), "2");
    assert.equal(field(deb("1"), "Architecture"), "amd64");
    assert.equal(field(deb("1"), "Maintainer"), MAINTAINER);
    assert.equal(field(deb("1"), "Depends"), `linux-image-${kver} | linux-image-${kver}-unsigned, kpatch-ts`);
  });

  it("ships the module byte for byte, its copyright and changelog", () => {
    const files = execFileSync("dpkg-deb", ["-c", deb("2")], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l && !l.startsWith("d"))
      .map((l) => l.split(/\s+/).pop());
    const doc = `./usr/share/doc/kpatch-patch-${kver}`;
    assert.deepEqual(files, [
      `./usr/lib/kpatch-ts/patches/${kver}/kpatch_replace_v10.ko`,
      `${doc}/changelog.gz`,
      `${doc}/copyright`,
    ]);
    const x = join(out, "x");
    execFileSync("dpkg-deb", ["-x", deb("2"), x]);
    assert.ok(
      readFileSync(join(x, `usr/lib/kpatch-ts/patches/${kver}/kpatch_replace_v10.ko`)).equals(
        readFileSync(modules["kpatch-replace-v10"]!),
      ),
    );
  });

  it("carries the maintainer scripts kpatch writes, executable", () => {
    const e = join(out, "control");
    execFileSync("dpkg-deb", ["-e", deb("1"), e]);
    const note = readElf(readFileSync(modules["kpatch-replace-v9"]!))
      .sections.find((sec) => sec.name === ".note.gnu.build-id")
      ?.notes.find((n) => n.name === "GNU");
    const values = {
      package: `kpatch-patch-${kver}`,
      kernelRelease: kver,
      patch: "kpatch_replace_v9",
      module: `/usr/lib/kpatch-ts/patches/${kver}/kpatch_replace_v9.ko`,
      buildId: Buffer.from(note!.desc).toString("hex"),
    };
    assert.equal(readFileSync(join(e, "postinst"), "utf8"), postinst(values));
    assert.equal(readFileSync(join(e, "prerm"), "utf8"), prerm(values));
    assert.equal(readFileSync(join(e, "postrm"), "utf8"), postrm(values));
    const info = execFileSync("dpkg-deb", ["-I", deb("1")], { encoding: "utf8" });
    for (const s of ["postinst", "prerm", "postrm"]) assert.match(info, new RegExp(`\\*\\s+${s}\\s`));
  });

  it("is lintian-clean", { skip: noLintian }, () => {
    const r = spawnSync("lintian", ["--fail-on", "error,warning", deb("1"), deb("2")], { encoding: "utf8" });
    const tags = r.stdout.split("\n").filter((l) => /^[EW]: /.test(l));
    assert.deepEqual(tags, []);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it("refuses what is not a live patch for that kernel, writing nothing", () => {
    const bad = mkdtempSync(join(out, "bad-"));
    const cases: [string[], RegExp][] = [
      [[modules["kpatch-stall-target"]!], /not a livepatch module.*KPATCH_NOT_LIVEPATCH/],
      [["-k", "6.1.0-57-amd64", modules["kpatch-replace-v9"]!], /built for kernel .*KPATCH_VERMAGIC/],
      [["-V", "one two", modules["kpatch-replace-v9"]!], /not a Debian version/],
      [["-n", "fix", modules["kpatch-replace-v9"]!], /Unknown option '-n'/],
      [
        ["--image-version", "1) | x (", modules["kpatch-replace-v9"]!],
        /--image-version .* is not a Debian version/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = kpatch(["package", "--maintainer", MAINTAINER, "-o", bad, ...args]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n")[0]!.includes("    at "), false);
    }
    const r = kpatch(["package", "-o", bad, modules["kpatch-replace-v9"]!]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /without a maintainer/);
    assert.deepEqual(readdirSync(bad), []);
  });
});
