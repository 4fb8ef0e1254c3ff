/**
 * dpkg's state machine on a kernel's patch package, with the real dpkg on this machine and the
 * packages kpatch package makes: install, upgrade to the next level, a level whose load fails
 * (half-configured: nothing of it left for boot), downgrade after it, an upgrade unpacked only
 * then removed, removal and purge, and another kernel's package removed beside. No kernel is
 * touched: dpkg runs in its own root (--root, scripts without chroot: --force-script-chrootless),
 * kpatch and uname are stubs first on PATH (writeStubKpatch: "installed" modules are files,
 * "loaded" ones a copy of their build id note where /sys/module/<name>/notes would show it).
 * After each step: what is loaded and what is installed for boot are exactly the module of the
 * level dpkg says is configured (or, after a failed upgrade, of the level before it).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
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
import { after, before, describe, it } from "node:test";
import { buildPatchPackage } from "../src/debian/patch-package.js";
import { livepatchObject, writeStubKpatch } from "./helpers/patch-package-fixtures.js";

const KVER = "6.12.117+deb12-amd64";
const OTHER = "6.1.0-57-amd64";
const work = mkdtempSync(join(tmpdir(), "kpatch-package-dpkg-"));
const ROOT = join(work, "root");
const BIN = join(work, "bin");
const LIB = join(work, "lib");
const SYS = join(work, "sys-module");
after(() => rmSync(work, { recursive: true, force: true }));

const noDpkg = spawnSync("dpkg", ["--version"]).status === 0 ? false : "dpkg is not installed";

function stubs(running: string): void {
  writeStubKpatch(BIN);
  writeFileSync(join(BIN, "uname"), `#!/bin/sh\necho ${running}\n`);
  chmodSync(join(BIN, "uname"), 0o755);
}

function dpkg(args: string[]): { code: number; out: string } {
  const r = spawnSync(
    "dpkg",
    ["--root", ROOT, "--force-script-chrootless", "--force-depends", "--force-not-root", ...args],
    {
      encoding: "utf8",
      env: {
        PATH: `${BIN}:/usr/sbin:/usr/bin:/sbin:/bin`,
        KPATCH_LIB_DIR: LIB,
        KPATCH_PACKAGES_DIR: join(work, "packages"),
        KPATCH_SYS_MODULE: SYS,
      },
    },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** dpkg's view: each patch package's status and version. */
function dpkgStatus(): Record<string, string> {
  const text = readFileSync(join(ROOT, "var/lib/dpkg/status"), "utf8");
  const out: Record<string, string> = {};
  for (const stanza of text.split("\n\n")) {
    const pkg = /^Package: (.*)$/m.exec(stanza)?.[1];
    if (pkg)
      out[pkg] =
        `${/^Status: .* (\S+)$/m.exec(stanza)?.[1]} ${/^Version: (.*)$/m.exec(stanza)?.[1] ?? ""}`.trim();
  }
  return out;
}

/** What is "loaded" (module: build id hex) and installed for boot (kernel/file: bytes' length). */
function live(): { loaded: Record<string, string>; installed: string[] } {
  const loaded: Record<string, string> = {};
  for (const m of existsSync(SYS) ? readdirSync(SYS) : [])
    loaded[m] = readFileSync(join(SYS, m, "notes", ".note.gnu.build-id"))
      .subarray(16)
      .toString("hex");
  const installed = (existsSync(LIB) ? readdirSync(LIB) : []).flatMap((k) =>
    readdirSync(join(LIB, k)).map((f) => `${k}/${f}`),
  );
  return { loaded, installed: installed.sort() };
}

describe("a kernel's patch package through dpkg's state machine (real dpkg, stub kpatch)", {
  skip: noDpkg,
}, () => {
  const debs: Record<string, string> = {};
  before(async () => {
    mkdirSync(join(ROOT, "var/lib/dpkg/info"), { recursive: true });
    mkdirSync(join(ROOT, "var/lib/dpkg/updates"), { recursive: true });
    writeFileSync(join(ROOT, "var/lib/dpkg/status"), "");
    // level: [module name, build id byte, refused to load?, kernel]
    const levels: [string, string, number, boolean, string][] = [
      ["1", "fix_1", 1, false, KVER],
      ["2", "fix_2", 2, false, KVER],
      ["3", "fix_3", 3, true, KVER],
      ["1", "fix_1", 9, false, OTHER],
    ];
    for (const [version, name, id, refused, kver] of levels) {
      const dir = mkdtempSync(join(work, "build-"));
      const module = livepatchObject(
        dir,
        { buildId: [id, id, id, id] },
        { name, livepatch: "Y", vermagic: `${kver} SMP `, ...(refused ? { description: "refused" } : {}) },
      );
      const p = await buildPatchPackage({
        module,
        version,
        maintainer: "J A <j@a.org>",
        outDir: join(work, "debs", kver),
      });
      debs[`${kver}:${version}${refused ? "-refused" : ""}`] = p.deb;
    }
  });

  const PKG = `kpatch-patch-${KVER}`;
  const OTHER_PKG = `kpatch-patch-${OTHER}`;
  const id = (b: number) => b.toString(16).padStart(2, "0").repeat(4);
  const ok = (args: string[]) => {
    const r = dpkg(args);
    assert.equal(r.code, 0, r.out);
  };

  it("install, then the next level: each configured level alone is loaded and installed for boot", () => {
    stubs(KVER);
    ok(["-i", debs[`${KVER}:1`]!]);
    assert.deepEqual(dpkgStatus(), { [PKG]: "installed 1" });
    assert.deepEqual(live(), { loaded: { fix_1: id(1) }, installed: [`${KVER}/fix_1.ko`] });
    ok(["-i", debs[`${KVER}:2`]!]);
    assert.deepEqual(dpkgStatus(), { [PKG]: "installed 2" });
    assert.deepEqual(live(), { loaded: { fix_2: id(2) }, installed: [`${KVER}/fix_2.ko`] });
  });

  it("a level that fails to load: half-configured, nothing of it for boot, the level before stays live; a downgrade settles it", () => {
    const r = dpkg(["-i", debs[`${KVER}:3-refused`]!]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /fix_3: not loaded, and not installed for boot either/);
    assert.deepEqual(dpkgStatus(), { [PKG]: "half-configured 3" });
    assert.deepEqual(live(), { loaded: { fix_2: id(2) }, installed: [`${KVER}/fix_2.ko`] });
    ok(["-i", debs[`${KVER}:2`]!]);
    assert.deepEqual(dpkgStatus(), { [PKG]: "installed 2" });
    assert.deepEqual(live(), { loaded: { fix_2: id(2) }, installed: [`${KVER}/fix_2.ko`] });
  });

  it("an upgrade unpacked only, then removed: the level it replaced is unloaded and uninstalled too", () => {
    ok(["--unpack", debs[`${KVER}:3-refused`]!]);
    assert.deepEqual(dpkgStatus(), { [PKG]: "unpacked 3" });
    ok(["-r", PKG]);
    assert.deepEqual(dpkgStatus(), { [PKG]: "config-files 3" }, "removed (its postrm kept until purge)");
    assert.deepEqual(live(), { loaded: {}, installed: [] });
  });

  it("another kernel's package (same module name) installs for boot only and is removed without touching the running kernel's", () => {
    ok(["-i", debs[`${KVER}:1`]!]);
    ok(["-i", debs[`${OTHER}:1`]!]);
    assert.deepEqual(dpkgStatus(), { [PKG]: "installed 1", [OTHER_PKG]: "installed 1" });
    assert.deepEqual(live().loaded, { fix_1: id(1) }, "not the other kernel's build");
    assert.deepEqual(live(), {
      loaded: { fix_1: id(1) },
      installed: [`${OTHER}/fix_1.ko`, `${KVER}/fix_1.ko`],
    });
    ok(["--purge", OTHER_PKG]);
    assert.deepEqual(live(), { loaded: { fix_1: id(1) }, installed: [`${KVER}/fix_1.ko`] });
    ok(["--purge", PKG]);
    assert.deepEqual(dpkgStatus(), {});
    assert.deepEqual(live(), { loaded: {}, installed: [] });
    assert.deepEqual(readdirSync(join(work, "packages")), [], "no record left");
  });

  it("a fresh install that fails to load is half-configured with nothing installed for boot; removing it is clean", () => {
    const r = dpkg(["-i", debs[`${KVER}:3-refused`]!]);
    assert.notEqual(r.code, 0);
    assert.deepEqual(dpkgStatus(), { [PKG]: "half-configured 3" });
    assert.deepEqual(live(), { loaded: {}, installed: [] });
    ok(["--purge", PKG]);
    assert.deepEqual(dpkgStatus(), {});
    assert.deepEqual(live(), { loaded: {}, installed: [] });
  });
});
