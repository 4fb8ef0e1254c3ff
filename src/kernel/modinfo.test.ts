import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { moduleNameOf, parseModinfo, readModuleFile, vermagicRelease } from "./modinfo.js";
import { fakeModule } from "./testing.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-modinfo-"));

test("parseModinfo() reads key=value strings in order and skips the NUL padding", () => {
  const data = new TextEncoder().encode("license=GPL\0\0\0livepatch=Y\0depends=\0alias=a\0alias=b\0");
  assert.deepEqual(parseModinfo(data), [
    ["license", "GPL"],
    ["livepatch", "Y"],
    ["depends", ""],
    ["alias", "a"],
    ["alias", "b"],
  ]);
});

test("readModuleFile() reads name, vermagic, livepatch and depends from .modinfo", () => {
  const path = join(dir, "livepatch-fix.ko");
  writeFileSync(
    path,
    fakeModule({
      vermagic: "6.12.57 SMP preempt mod_unload modversions ",
      livepatch: "Y",
      license: "GPL",
      depends: "a,b",
      name: "livepatch_fix",
    }),
  );
  const { info } = readModuleFile(path);
  assert.equal(info.name, "livepatch_fix");
  assert.equal(info.livepatch, true);
  assert.equal(info.license, "GPL");
  assert.deepEqual(info.depends, ["a", "b"]);
  assert.equal(vermagicRelease(info.vermagic!), "6.12.57");
});

test("readModuleFile() takes the name from the file when .modinfo has none", () => {
  const path = join(dir, "kobject-example.ko");
  writeFileSync(path, fakeModule({ vermagic: "6.12.57 SMP", license: "GPL" }));
  const { info } = readModuleFile(path);
  assert.equal(info.name, "kobject_example");
  assert.equal(info.livepatch, false);
});

test("readModuleFile() rejects a file that is not a module, and a missing one, with stable codes", () => {
  const text = join(dir, "notes.ko");
  writeFileSync(text, "not an ELF file at all, just text\n");
  assert.throws(() => readModuleFile(text), { code: "KPATCH_NOT_MODULE" });
  assert.throws(() => readModuleFile(join(dir, "missing.ko")), {
    code: "KPATCH_NO_FILE",
    message: /no such file/,
  });
});

test("moduleNameOf() maps file names and paths to kernel module names", () => {
  assert.equal(moduleNameOf("/x/livepatch-sample.ko"), "livepatch_sample");
  assert.equal(moduleNameOf("livepatch_sample"), "livepatch_sample");
  assert.equal(moduleNameOf("fix.ko.xz"), "fix");
});
