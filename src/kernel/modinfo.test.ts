import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fakeModule } from "../../test/helpers/fake-kernel.js";
import { parseModinfo, readModuleFile, vermagicRelease } from "./modinfo.js";

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

test("readModuleFile() refuses a module whose .modinfo name is not a module name (it reaches paths)", () => {
  const path = join(dir, "evil.ko");
  writeFileSync(path, fakeModule({ vermagic: "6.12.57 SMP ", livepatch: "Y", name: "../../../x" }));
  assert.throws(() => readModuleFile(path), {
    code: "KPATCH_BAD_NAME",
    message: /^Cannot use .*evil\.ko: its module name '\.\.\/\.\.\/\.\.\/x' is not one the kernel allows/,
  });
});

test("readModuleFile() names the module after its file when .modinfo has no name ('-' read as '_')", () => {
  const path = join(dir, "livepatch-noname.ko");
  writeFileSync(path, fakeModule({ vermagic: "6.12.57 SMP ", livepatch: "Y" }));
  assert.equal(readModuleFile(path).info.name, "livepatch_noname");
});
