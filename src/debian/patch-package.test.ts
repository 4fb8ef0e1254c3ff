import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
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
import { after, test } from "node:test";
import { livepatchObject, writeStubKpatch } from "../../test/helpers/patch-package-fixtures.js";
import { buildPatchPackage, patchDepends, patchPackageName } from "./patch-package.js";
import { type PatchScriptValues, postinst, postrm, prerm } from "./patch-scripts.js";

test("patchPackageName() is the kernel release's one package name, in Debian's alphabet", () => {
  assert.equal(patchPackageName("6.12.57+deb13-amd64"), "kpatch-patch-6.12.57+deb13-amd64");
  assert.equal(patchPackageName("6.1.0-57-amd64"), "kpatch-patch-6.1.0-57-amd64");
  assert.equal(patchPackageName("6.12.0~rc1_X"), "kpatch-patch-6.12.0-rc1-x");
});

test("patchPackageName() refuses a release that could reach a path", () => {
  assert.throws(() => patchPackageName("../6.12"), { code: "KPATCH_BAD_RELEASE" });
  assert.throws(() => patchPackageName("6.12/x"), { code: "KPATCH_BAD_RELEASE" });
  assert.throws(() => patchPackageName(""), { code: "KPATCH_BAD_RELEASE" });
});

test("buildPatchPackage() refuses a module that does not replace, naming why", async () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-package-replace-"));
  try {
    const module = livepatchObject(
      out,
      { replace: false },
      { name: "fix", livepatch: "Y", vermagic: "6.12.57 SMP " },
    );
    await assert.rejects(buildPatchPackage({ module, maintainer: "J A <j@a.org>", outDir: out }), {
      code: "DEBIAN_PACKAGE_FAILED",
      message: /does not replace other patches \(built with -R\/--non-replace\)/,
    });
    const p = await buildPatchPackage({
      module: livepatchObject(out, {}, { name: "fix", livepatch: "Y", vermagic: "6.12.57 SMP " }),
      maintainer: "J A <j@a.org>",
      outDir: out,
    });
    assert.equal(p.name, "kpatch-patch-6.12.57");
    assert.match(
      execFileSync("dpkg-deb", ["-I", p.deb, "postinst"], { encoding: "utf8" }),
      /^BUILD_ID='01020304'$/m,
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("patchDepends() names exactly that kernel's image package and kpatch-ts", () => {
  assert.equal(
    patchDepends("6.12.57+deb13-amd64"),
    "linux-image-6.12.57+deb13-amd64 | linux-image-6.12.57+deb13-amd64-unsigned, kpatch-ts",
  );
  assert.equal(
    patchDepends("6.12.117+deb12-amd64", "6.12.117-1~deb12u1"),
    "linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-amd64-unsigned (= 6.12.117-1~deb12u1), kpatch-ts",
  );
  assert.throws(() => patchDepends("6.12.117+deb12-amd64", "1) | evil ("), { code: "DEBIAN_BAD_NAME" });
});

test("buildPatchPackage(): a modinfo license or description with newlines and escapes adds no stanza, field or control character", async () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-package-escape-"));
  try {
    const module = livepatchObject(
      out,
      {},
      {
        name: "fix",
        livepatch: "Y",
        vermagic: "6.12.57 SMP ",
        license: "GPL\n\nFiles: *\nCopyright: nobody\nLicense: public-domain\x1b[2J",
        description: "a fix\n signed:           yes\x1b]0;owned\x07",
      },
    );
    const p = await buildPatchPackage({ module, maintainer: "Jane Admin <jane@example.org>", outDir: out });
    const tree = join(out, "tree");
    execFileSync("dpkg-deb", ["-x", p.deb, tree]);
    const copyright = readFileSync(join(tree, "usr/share/doc", p.name, "copyright"), "utf8");
    assert.equal(copyright.match(/^Files:/gm)?.length, 1, copyright);
    assert.equal(
      copyright.match(/^License:/gm)?.length,
      2,
      "GPL-2.0-only's Files stanza and its license text",
    );
    assert.match(
      copyright,
      /Its modinfo license: GPL\\n\\nFiles: \*\\nCopyright: nobody\\nLicense: public-domain\\x1b\[2J\./,
    );
    const control = execFileSync("dpkg-deb", ["-f", p.deb], { encoding: "utf8" });
    assert.doesNotMatch(control, /(?!\n)\p{Cc}/u, "no control character but newlines");
    assert.match(control, /Module description: a fix signed: yes\\x1b\]0;owned\\x07\n/);
    assert.deepEqual(control.match(/^[A-Z][\w-]*:/gm), [
      "Package:",
      "Version:",
      "Architecture:",
      "Installed-Size:",
      "Maintainer:",
      "Depends:",
      "Section:",
      "Priority:",
      "Description:",
    ]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

// The maintainer scripts themselves, run by sh with a stub kpatch (writeStubKpatch: the module
// files here are not ELF, so each stands for its own build id) and a stub uname: no kernel is
// touched.
const dir = mkdtempSync(join(tmpdir(), "kpatch-package-scripts-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const KVER = "6.12.117";
const OTHER = "6.1.0-57-amd64";
const LOG = join(dir, "log");
const LIB = join(dir, "lib");
const SYS = join(dir, "sys-module");
const BIN = join(dir, "bin");
writeStubKpatch(BIN, LOG);

/** Package `pkg`'s version whose module is `patch` with build `build`. */
function values(patch: string, build = patch, pkg = `kpatch-patch-${KVER}`, kver = KVER): PatchScriptValues {
  const module = join(dir, "ship", pkg, build, `${patch}.ko`);
  mkdirSync(join(module, ".."), { recursive: true });
  writeFileSync(module, build);
  return { package: pkg, kernelRelease: kver, patch, module, buildId: Buffer.from(build).toString("hex") };
}

function run(
  script: string,
  args: string[],
  running: string,
): { log: string[]; code: number; stderr: string } {
  const file = join(dir, "script");
  writeFileSync(file, script);
  writeFileSync(join(BIN, "uname"), `#!/bin/sh\necho ${running}\n`);
  chmodSync(join(BIN, "uname"), 0o755);
  rmSync(LOG, { force: true });
  const r = spawnSync("sh", [file, ...args], {
    encoding: "utf8",
    env: {
      PATH: `${BIN}:/usr/bin:/bin`,
      KPATCH_LIB_DIR: LIB,
      KPATCH_PACKAGES_DIR: join(dir, "packages"),
      KPATCH_SYS_MODULE: SYS,
    },
  });
  const log = existsSync(LOG) ? readFileSync(LOG, "utf8").trim().split("\n") : [];
  return { log, code: r.status ?? -1, stderr: r.stderr };
}

/** What is loaded (name: build) and installed for boot (kernel/name: build) now. */
function state(): { loaded: Record<string, string>; installed: Record<string, string> } {
  const loaded: Record<string, string> = {};
  for (const m of existsSync(SYS) ? readdirSync(SYS) : [])
    loaded[m] = readFileSync(join(SYS, m, "notes", ".note.gnu.build-id"))
      .subarray(16)
      .toString();
  const installed: Record<string, string> = {};
  for (const k of existsSync(LIB) ? readdirSync(LIB) : [])
    for (const f of readdirSync(join(LIB, k))) installed[`${k}/${f}`] = readFileSync(join(LIB, k, f), "utf8");
  return { loaded, installed };
}

function reset(): void {
  for (const d of [LIB, SYS, join(dir, "packages")]) rmSync(d, { recursive: true, force: true });
}

test("the scripts are valid sh and refuse an unknown action", () => {
  const v = values("fix_v1");
  for (const s of [postinst(v), prerm(v), postrm(v)]) {
    execFileSync("sh", ["-n", "-c", s]);
    assert.notEqual(run(s, ["bogus"], KVER).code, 0);
  }
});

test("install, upgrade to the next level (a new module name), removal: loaded and installed follow dpkg", () => {
  reset();
  const v1 = values("fix_v1");
  const v2 = values("fix_v2");
  // On a machine running another kernel: installed for boot, nothing live.
  assert.deepEqual(run(postinst(v1), ["configure", ""], OTHER).log, [
    `kpatch install -k ${KVER} ${v1.module}`,
  ]);
  assert.deepEqual(state().loaded, {});
  reset();
  assert.deepEqual(run(postinst(v1), ["configure", ""], KVER).log, [
    `kpatch install -k ${KVER} ${v1.module}`,
    `kpatch load ${v1.module}`,
  ]);
  // The upgrade: old prerm/postrm keep v1 live; the new postinst loads v2 (replacing v1 live),
  // then unloads v1's lingering module and uninstalls it.
  assert.deepEqual(run(prerm(v1), ["upgrade", "2"], KVER).log, []);
  assert.deepEqual(run(postrm(v1), ["upgrade", "2"], KVER).log, []);
  assert.deepEqual(run(postinst(v2), ["configure", "1"], KVER).log, [
    `kpatch install -k ${KVER} ${v2.module}`,
    `kpatch load ${v2.module}`,
    "kpatch unload fix_v1",
    `kpatch uninstall -k ${KVER} fix_v1`,
  ]);
  assert.deepEqual(state(), { loaded: { fix_v2: "fix_v2" }, installed: { [`${KVER}/fix_v2.ko`]: "fix_v2" } });
  assert.deepEqual(run(prerm(v2), ["remove"], KVER).log, [
    "kpatch unload fix_v2",
    `kpatch uninstall -k ${KVER} fix_v2`,
  ]);
  assert.deepEqual(run(postrm(v2), ["remove"], KVER).log, []);
  assert.deepEqual(state(), { loaded: {}, installed: {} });
  assert.ok(!existsSync(join(dir, "packages", v2.package)));
  assert.deepEqual(run(prerm(v2), ["remove"], KVER).log, [], "removing again does nothing");
});

test("removing one kernel's package never touches another kernel's patch of the same module name (item 1)", () => {
  reset();
  const mine = values("fix", "fix-for-6.1", `kpatch-patch-${OTHER}`, OTHER);
  const theirs = values("fix", "fix-for-6.12");
  run(postinst(mine), ["configure", ""], KVER); // installed for 6.1 only: this machine runs 6.12
  run(postinst(theirs), ["configure", ""], KVER);
  assert.deepEqual(state().loaded, { fix: "fix-for-6.12" });
  // Removing the 6.1 package (e.g. with its old linux-image) on the 6.12 machine.
  assert.deepEqual(run(prerm(mine), ["remove"], KVER).log, [`kpatch uninstall -k ${OTHER} fix`]);
  assert.deepEqual(state(), {
    loaded: { fix: "fix-for-6.12" },
    installed: { [`${KVER}/fix.ko`]: "fix-for-6.12" },
  });
  // Even on its own kernel it unloads only its own build.
  const r = run(prerm(mine), ["remove"], OTHER);
  assert.deepEqual(r.log, []);
  assert.deepEqual(state().loaded, { fix: "fix-for-6.12" });
});

test("a level whose load fails undoes its install; dpkg -r then removes the older level it left live (items 2, 4)", () => {
  reset();
  const v1 = values("fix_v1");
  const bad = values("fix_v2", "fix_v2 refused");
  // A fresh install that cannot load: not configured, and nothing installed for boot.
  const fresh = run(postinst(bad), ["configure", ""], KVER);
  assert.notEqual(fresh.code, 0);
  assert.deepEqual(state(), { loaded: {}, installed: {} });
  // An upgrade from v1 whose load fails: v1 stays loaded and installed, v2 is not installed.
  reset();
  run(postinst(v1), ["configure", ""], KVER);
  const up = run(postinst(bad), ["configure", "1"], KVER);
  assert.notEqual(up.code, 0);
  assert.match(up.stderr, /fix_v2: not loaded, and not installed for boot either/);
  assert.deepEqual(state(), { loaded: { fix_v1: "fix_v1" }, installed: { [`${KVER}/fix_v1.ko`]: "fix_v1" } });
  // dpkg -r of the half-configured v2: the recorded v1 goes too, nothing is left owned by no one.
  assert.deepEqual(run(prerm(bad), ["remove"], KVER).log, [
    "kpatch unload fix_v1",
    `kpatch uninstall -k ${KVER} fix_v1`,
  ]);
  assert.deepEqual(state(), { loaded: {}, installed: {} });
  // Unpacked only (no configure) then removed: the same.
  run(postinst(v1), ["configure", ""], KVER);
  run(prerm(v1), ["upgrade", "2"], KVER);
  assert.deepEqual(run(prerm(values("fix_v2")), ["remove"], KVER).log, [
    "kpatch unload fix_v1",
    `kpatch uninstall -k ${KVER} fix_v1`,
  ]);
  assert.deepEqual(state(), { loaded: {}, installed: {} });
});

test("an upgrade whose module keeps its name replaces the loaded build, saying so (item 3)", () => {
  reset();
  const v1 = values("fix", "fix build 1");
  const v2 = values("fix", "fix build 2");
  run(postinst(v1), ["configure", ""], KVER);
  const r = run(postinst(v2), ["configure", "1"], KVER);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.log, [
    `kpatch install -k ${KVER} ${v2.module}`,
    "kpatch unload fix",
    `kpatch load ${v2.module}`,
  ]);
  assert.match(r.stderr, /another build of fix is loaded; unloading it to load this one/);
  assert.deepEqual(state(), {
    loaded: { fix: "fix build 2" },
    installed: { [`${KVER}/fix.ko`]: "fix build 2" },
  });
  // Configuring again changes nothing.
  assert.deepEqual(run(postinst(v2), ["configure", "2"], KVER).log, [
    `kpatch install -k ${KVER} ${v2.module}`,
  ]);
});

test("postinst abort-remove puts the configured level back live; a record that is not a module name is ignored", () => {
  reset();
  const v = values("fix_v3");
  run(postinst(v), ["configure", ""], KVER);
  rmSync(join(SYS, "fix_v3"), { recursive: true }); // a prerm remove that unloaded, then failed
  assert.deepEqual(run(postinst(v), ["abort-remove"], KVER).log, [`kpatch load ${v.module}`]);
  writeFileSync(join(dir, "packages", v.package), "../../etc/x 00\n");
  assert.deepEqual(run(postinst(v), ["configure", "2"], OTHER).log, [
    `kpatch install -k ${KVER} ${v.module}`,
  ]);
  assert.equal(readFileSync(join(dir, "packages", v.package), "utf8"), `fix_v3 ${v.buildId}\n`);
});
