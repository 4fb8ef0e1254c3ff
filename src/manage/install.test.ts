import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fakeModule } from "../../test/helpers/fake-kernel.js";
import { block } from "./crash-guard.js";
import {
  allInstalledPatches,
  findInstalled,
  installedKernels,
  installedPatches,
  installPatch,
  naturalCompare,
  oddEntries,
  uninstallPatch,
} from "./install.js";

const src = mkdtempSync(join(tmpdir(), "kpatch-install-src-"));
function module(file: string, fields: Record<string, string>): string {
  const path = join(src, file);
  writeFileSync(path, fakeModule(fields));
  return path;
}

test("installPatch() keeps the module under <root>/<kver>/ and lists it per kernel", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  const fix = module("livepatch-fix.ko", { vermagic: "6.12.57 SMP ", livepatch: "Y", name: "livepatch_fix" });
  const p = installPatch(fix, { kernelRelease: "6.12.57", root });
  assert.equal(p.file, join(root, "6.12.57", "livepatch-fix.ko"));
  assert.equal(p.name, "livepatch_fix");
  assert.deepEqual(installedKernels(root), ["6.12.57"]);
  assert.equal(findInstalled("livepatch-fix", "6.12.57", root)?.file, p.file);
  assert.equal(findInstalled("livepatch_fix", "6.12.57", root)?.file, p.file);
  assert.equal(findInstalled("livepatch_fix", "6.1.0", root), undefined);
});

test("installPatch() refuses what loading would refuse: another kernel's module, a plain module", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  const other = module("other.ko", { vermagic: "6.1.0 SMP ", livepatch: "Y" });
  assert.throws(() => installPatch(other, { kernelRelease: "6.12.57", root }), { code: "KPATCH_VERMAGIC" });
  const plain = module("plain.ko", { vermagic: "6.12.57 SMP " });
  assert.throws(() => installPatch(plain, { kernelRelease: "6.12.57", root }), {
    code: "KPATCH_NOT_LIVEPATCH",
  });
  assert.deepEqual(allInstalledPatches(root), []);
});

test("installPatch() replaces an older file of the same patch; uninstallPatch() removes it and its guard state", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  const v1 = module("fix-v1.ko", { vermagic: "6.12.57 SMP ", livepatch: "Y", name: "fix" });
  const v2 = module("fix-v2.ko", { vermagic: "6.12.57 SMP ", livepatch: "Y", name: "fix" });
  installPatch(v1, { kernelRelease: "6.12.57", root });
  installPatch(v2, { kernelRelease: "6.12.57", root });
  assert.deepEqual(
    allInstalledPatches(root).map((p) => [p.name, p.file]),
    [["fix", join(root, "6.12.57", "fix-v2.ko")]],
  );
  block("6.12.57", "fix", { bootId: "b", at: "t", since: "s", reason: "r" }, root);
  assert.equal(allInstalledPatches(root)[0]?.blocked?.reason, "r");
  uninstallPatch("fix", { kernelRelease: "6.12.57", root });
  assert.deepEqual(allInstalledPatches(root), []);
  assert.equal(existsSync(join(root, "6.12.57", ".boot", "fix.blocked")), false);
  assert.throws(() => uninstallPatch("fix", { kernelRelease: "6.12.57", root }), {
    code: "KPATCH_NOT_INSTALLED",
  });
});

const KVER = "6.12.57";
const patchModule = (file: string, name: string, extra: Record<string, string> = {}) =>
  module(file, { vermagic: `${KVER} SMP `, livepatch: "Y", name, ...extra });

test("a kernel release that is no release is refused before it reaches a path: nothing outside is touched", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  // What `kpatch uninstall -k ../x NAME` would have deleted: <root>/../x/NAME.ko.
  const outside = join(root, "..", `x-${process.pid}`);
  mkdirSync(outside, { recursive: true });
  writeFileSync(
    join(outside, "victim.ko"),
    fakeModule({ vermagic: "x SMP ", livepatch: "Y", name: "victim" }),
  );
  const kernelRelease = `../x-${process.pid}`;
  assert.throws(() => uninstallPatch("victim", { kernelRelease, root }), { code: "KPATCH_BAD_RELEASE" });
  assert.throws(() => installPatch(patchModule("v.ko", "v"), { kernelRelease, root }), {
    code: /KPATCH_BAD_RELEASE|KPATCH_VERMAGIC/,
  });
  assert.throws(() => installedPatches(kernelRelease, root), { code: "KPATCH_BAD_RELEASE" });
  assert.equal(existsSync(join(outside, "victim.ko")), true);
  rmSync(outside, { recursive: true });
});

test("installed patches are listed (and load at boot) in natural order: -v9 before -v10", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  for (const v of [10, 9, 2, 1])
    installPatch(patchModule(`fix-v${v}.ko`, `fix_v${v}`), { kernelRelease: KVER, root });
  assert.deepEqual(
    installedPatches(KVER, root).map((p) => p.name),
    ["fix_v1", "fix_v2", "fix_v9", "fix_v10"],
  );
  assert.deepEqual(["a10", "a9", "a09", "b", "a"].sort(naturalCompare), ["a", "a9", "a09", "a10", "b"]);
});

test("a dangling or unreadable .ko in the state directory is listed as broken, the others as usual", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  installPatch(patchModule("good.ko", "good"), { kernelRelease: KVER, root });
  symlinkSync(join(root, "gone.ko"), join(root, KVER, "dangling.ko"));
  writeFileSync(join(root, KVER, "junk.ko"), "not an ELF file");
  mkdirSync(join(root, KVER, "adir.ko"));
  const listed = installedPatches(KVER, root);
  assert.deepEqual(
    listed.map((p) => [p.name, p.broken?.code]),
    [
      ["adir", "KPATCH_NO_FILE"],
      ["dangling", "KPATCH_NO_FILE"],
      ["good", undefined],
      ["junk", "KPATCH_NOT_MODULE"],
    ],
  );
  assert.match(listed[1]!.broken!.message, /dangling\.ko: no such file or directory/);
  assert.equal(findInstalled("good", KVER, root)?.name, "good");
  uninstallPatch("dangling", { kernelRelease: KVER, root });
  assert.equal(findInstalled("dangling", KVER, root), undefined);
});

/** The files of a directory but the crash guard's .boot. */
const visible = (dir: string) => readdirSync(dir).filter((f) => f !== ".boot");

/** Installs `file` in a child process whose file size limit is `limit` bytes (a full disk). */
function installLimited(file: string, root: string, limit: number) {
  const install = join(import.meta.dirname, "install.js");
  const script = `import { installPatch } from ${JSON.stringify(install)};
try { installPatch(${JSON.stringify(file)}, { kernelRelease: "${KVER}", root: ${JSON.stringify(root)} }); console.log("installed"); }
catch (e) { console.log(e.code); }`;
  return spawnSync("prlimit", [`--fsize=${limit}`, process.execPath, "--input-type=module", "-e", script], {
    encoding: "utf8",
  });
}

test("installPatch() never installs a truncated module and keeps the previous version when a write falls short", () => {
  // prlimit (util-linux, essential on Debian) sets the file size limit that cuts the write short.
  assert.equal(spawnSync("prlimit", ["--version"]).status, 0, "prlimit (util-linux) is not installed");
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  const padding = { description: "x".repeat(64 * 1024) };
  const v1 = patchModule("fix-v1.ko", "fix");
  installPatch(v1, { kernelRelease: KVER, root });
  const before = readFileSync(join(root, KVER, "fix-v1.ko"));
  // Under another file name (the older one is removed once the new one is in), and under the same.
  for (const v2 of [patchModule("fix-v2.ko", "fix", padding), patchModule("fix-v1.ko", "fix", padding)]) {
    const r = installLimited(v2, root, 32 * 1024);
    assert.equal(r.stdout.trim(), "KPATCH_STATE_IO", `${r.stdout}${r.stderr}`);
    assert.deepEqual(visible(join(root, KVER)), ["fix-v1.ko"], "no other version, no temporary file");
    assert.deepEqual(readFileSync(join(root, KVER, "fix-v1.ko")), before);
  }
  // With room, the same install goes through.
  const r = installLimited(patchModule("fix-v2.ko", "fix", padding), root, 1024 * 1024);
  assert.equal(r.stdout.trim(), "installed", r.stderr);
  assert.deepEqual(visible(join(root, KVER)), ["fix-v2.ko"]);
});

test("allInstalledPatches() skips state-directory entries that name no kernel release; oddEntries() reports them", () => {
  const root = mkdtempSync(join(tmpdir(), "kpatch-lib-"));
  installPatch(module("fix-odd.ko", { vermagic: "6.12.57 SMP ", livepatch: "Y", name: "fix_odd" }), {
    kernelRelease: "6.12.57",
    root,
  });
  mkdirSync(join(root, "old backup"));
  writeFileSync(join(root, "notes.txt"), "kept by an admin\n");
  assert.deepEqual(
    allInstalledPatches(root).map((p) => [p.kernel, p.name]),
    [["6.12.57", "fix_odd"]],
  );
  assert.deepEqual(installedKernels(root), ["6.12.57"]);
  assert.deepEqual(
    oddEntries(root).sort((a, b) => a.path.localeCompare(b.path)),
    [
      { path: join(root, "notes.txt"), why: "not a directory" },
      {
        path: join(root, "old backup"),
        why: "a release starts with a letter or digit and has only letters, digits and . _ + ~ -",
      },
    ],
  );
});
