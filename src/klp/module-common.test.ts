import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { after } from "node:test";
import { keepModuleCommon, seedModuleCommon } from "./module-common.js";

/** A kbuild .cmd as Makefile.modfinal writes it for <dir>/.module-common.o (shortened). */
function cmdFile(dir: string): string {
  return [
    `savedcmd_${dir}/.module-common.o := gcc -Wp,-MMD,${dir}/..module-common.o.d -c -o ${dir}/.module-common.o scripts/module-common.c`,
    `deps_${dir}/.module-common.o := include/linux/module.h`,
    `${dir}/.module-common.o: $(deps_${dir}/.module-common.o)`,
    "",
  ].join("\n");
}

const root = mkdtempSync(join(tmpdir(), "kpatch-module-common-"));
after(() => rmSync(root, { recursive: true, force: true }));
process.env["KPATCH_TS_CACHE"] = join(root, "cache");

test("the kept .module-common.o goes into the next module's directory with its mtime and its .cmd moved there", () => {
  const tree = join(root, "build");
  const args = ["CC=gcc-12"];
  const [first, second, third] = ["m1", "m2", "m3"].map((d) => join(root, d));
  for (const d of [first!, second!, third!]) mkdirSync(d);

  // Nothing kept yet: nothing seeded; a build that made none keeps none.
  assert.equal(seedModuleCommon(first!, tree, args), undefined);
  keepModuleCommon(first!, tree, args, undefined);
  assert.equal(seedModuleCommon(second!, tree, args), undefined);

  // The first build made one (an hour ago): kept, then seeded with that mtime and the new path.
  writeFileSync(join(first!, ".module-common.o"), "object 1");
  writeFileSync(join(first!, "..module-common.o.cmd"), cmdFile(first!));
  const made = new Date(Date.now() - 3600_000);
  utimesSync(join(first!, ".module-common.o"), made, made);
  keepModuleCommon(first!, tree, args, undefined);
  const seeded = seedModuleCommon(second!, tree, args);
  assert.equal(seeded, statSync(join(second!, ".module-common.o")).mtimeMs);
  assert.equal(Math.round(seeded! / 1000), Math.round(made.getTime() / 1000));
  assert.equal(readFileSync(join(second!, ".module-common.o"), "utf8"), "object 1");
  assert.equal(readFileSync(join(second!, "..module-common.o.cmd"), "utf8"), cmdFile(second!));
  assert.equal(seedModuleCommon(third!, ["x"].join(""), args), undefined, "another tree keeps its own");
  assert.equal(seedModuleCommon(third!, tree, ["CC=gcc-14"]), undefined, "other make arguments too");

  // kbuild kept the seeded one: nothing changes. kbuild rebuilt it (a header changed): kept anew.
  keepModuleCommon(second!, tree, args, seeded);
  writeFileSync(join(second!, ".module-common.o"), "object 2");
  keepModuleCommon(second!, tree, args, seeded);
  assert.notEqual(seedModuleCommon(third!, tree, args), undefined);
  assert.equal(readFileSync(join(third!, ".module-common.o"), "utf8"), "object 2");
  assert.equal(readFileSync(join(third!, "..module-common.o.cmd"), "utf8"), cmdFile(third!));
  assert.equal(existsSync(join(root, "cache", "module-common")), true);
});
