import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fakeModule } from "../kernel/testing.js";
import { buildPatchPackage, patchDepends, patchPackageName } from "./patch-package.js";
import { type PatchScriptValues, postinst, postrm, prerm } from "./patch-scripts.js";

test("patchPackageName() says the patch and the release in Debian's alphabet", () => {
  assert.equal(
    patchPackageName("fix_cmdline", "6.12.57+deb13-amd64"),
    "kpatch-patch-fix-cmdline-6.12.57+deb13-amd64",
  );
  assert.equal(
    patchPackageName("Fix-CVE_2026", "6.1.0-57-amd64"),
    "kpatch-patch-fix-cve-2026-6.1.0-57-amd64",
  );
  assert.equal(patchPackageName("p", "6.12.0~rc1"), "kpatch-patch-p-6.12.0-rc1");
});

test("patchPackageName() refuses a patch name or release that could reach a path", () => {
  assert.throws(() => patchPackageName("../etc", "6.12.57"), { code: "KPATCH_BAD_NAME" });
  assert.throws(() => patchPackageName("a b", "6.12.57"), { code: "KPATCH_BAD_NAME" });
  assert.throws(() => patchPackageName("fix", "../6.12"), { code: "KPATCH_BAD_RELEASE" });
  assert.throws(() => patchPackageName("fix", "6.12/x"), { code: "KPATCH_BAD_RELEASE" });
  assert.throws(() => patchPackageName("fix", ""), { code: "KPATCH_BAD_RELEASE" });
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
    const module = join(out, "fix.ko");
    writeFileSync(
      module,
      fakeModule({
        name: "fix",
        livepatch: "Y",
        vermagic: "6.12.57 SMP ",
        license: "GPL\n\nFiles: *\nCopyright: nobody\nLicense: public-domain\x1b[2J",
        description: "a fix\n signed:           yes\x1b]0;owned\x07",
      }),
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

// The maintainer scripts themselves, run by sh with a stub kpatch (it logs its arguments and
// keeps installed modules as files, as kpatch install does) and a stub uname, against a
// temporary KPATCH_LIB_DIR: install, upgrade to an atomic-replace v10, removal.
const dir = mkdtempSync(join(tmpdir(), "kpatch-package-scripts-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const KVER = "6.12.117";
const LOG = join(dir, "log");
const LIB = join(dir, "lib");
const BIN = join(dir, "bin");
mkdirSync(BIN);
writeFileSync(
  join(BIN, "kpatch"),
  `#!/bin/sh
echo "kpatch $*" >> '${LOG}'
case "$1" in
  install) mkdir -p "$KPATCH_LIB_DIR/$3" && cp "$4" "$KPATCH_LIB_DIR/$3/" ;;
  uninstall) rm "$KPATCH_LIB_DIR/$3/$4.ko" ;;
esac
`,
);
chmodSync(join(BIN, "kpatch"), 0o755);

function values(patch: string): PatchScriptValues {
  const module = join(dir, "ship", `${patch}.ko`);
  mkdirSync(join(dir, "ship"), { recursive: true });
  writeFileSync(module, patch);
  return { package: "kpatch-patch-fix-6.12.117", kernelRelease: KVER, patch, module };
}

function run(script: string, args: string[], running: string): string[] {
  const file = join(dir, "script");
  writeFileSync(file, script);
  writeFileSync(join(BIN, "uname"), `#!/bin/sh\necho ${running}\n`);
  chmodSync(join(BIN, "uname"), 0o755);
  rmSync(LOG, { force: true });
  execFileSync("sh", [file, ...args], {
    env: {
      PATH: `${BIN}:/usr/bin:/bin`,
      KPATCH_LIB_DIR: LIB,
      KPATCH_PACKAGES_DIR: join(dir, "packages"),
    },
  });
  return existsSync(LOG) ? readFileSync(LOG, "utf8").trim().split("\n") : [];
}

test("the scripts are valid sh and refuse an unknown action", () => {
  for (const s of [postinst(values("fix_v1")), prerm(values("fix_v1")), postrm(values("fix_v1"))]) {
    execFileSync("sh", ["-n", "-c", s]);
    assert.throws(() => run(s, ["bogus"], KVER));
  }
});

test("postinst installs, loads only on that kernel; an upgrade replaces; prerm removes", () => {
  const v1 = values("fix_v1");
  const v2 = values("fix_v2");
  // On a machine running another kernel: installed for boot, nothing live.
  assert.deepEqual(run(postinst(v1), ["configure", ""], "6.1.0-57-amd64"), [
    `kpatch install -k ${KVER} ${v1.module}`,
  ]);
  // On the kernel itself (the host's /proc/modules has no fix_v1): loaded.
  assert.deepEqual(run(postinst(v1), ["configure", ""], KVER), [
    `kpatch install -k ${KVER} ${v1.module}`,
    `kpatch load ${v1.module}`,
  ]);
  assert.equal(readFileSync(join(dir, "packages", v1.package), "utf8"), "fix_v1\n");
  // Upgrade to version 2: the old prerm keeps v1 live, the new postinst loads v2 (replacing
  // v1 live) and uninstalls v1.
  assert.deepEqual(run(prerm(v1), ["upgrade", "2"], KVER), []);
  assert.deepEqual(run(postrm(v1), ["upgrade", "2"], KVER), []);
  assert.deepEqual(run(postinst(v2), ["configure", "1"], KVER), [
    `kpatch install -k ${KVER} ${v2.module}`,
    `kpatch load ${v2.module}`,
    `kpatch uninstall -k ${KVER} fix_v1`,
  ]);
  assert.ok(!existsSync(join(LIB, KVER, "fix_v1.ko")));
  assert.ok(existsSync(join(LIB, KVER, "fix_v2.ko")));
  assert.equal(readFileSync(join(dir, "packages", v2.package), "utf8"), "fix_v2\n");
  // Removal: not loaded here, so only uninstalled; postrm forgets the record.
  assert.deepEqual(run(prerm(v2), ["remove"], KVER), [`kpatch uninstall -k ${KVER} fix_v2`]);
  assert.deepEqual(run(postrm(v2), ["remove"], KVER), []);
  assert.ok(!existsSync(join(dir, "packages", v2.package)));
  // Removing again (nothing installed) succeeds and does nothing.
  assert.deepEqual(run(prerm(v2), ["remove"], KVER), []);
});

test("postinst ignores a record that is not a module name", () => {
  const v = values("fix_v3");
  mkdirSync(join(dir, "packages"), { recursive: true });
  writeFileSync(join(dir, "packages", v.package), "../../etc/x\n");
  assert.deepEqual(run(postinst(v), ["configure", "2"], "other"), [`kpatch install -k ${KVER} ${v.module}`]);
  assert.equal(readFileSync(join(dir, "packages", v.package), "utf8"), "fix_v3\n");
});
