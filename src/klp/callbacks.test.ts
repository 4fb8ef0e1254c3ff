/** takeCallbacks() over real objects: callback sections as kpatch-macros.h lays them out, compiled by gcc. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type ElfFile, readElf, STB_GLOBAL, STT_FUNC } from "../elf/index.js";
import { isKpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import { takeCallbacks } from "./callbacks.js";
import { callbackSectionName } from "./format.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-callbacks-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function compiled(name: string, src: string): Promise<ElfFile> {
  const c = join(dir, `${name}.c`);
  const o = join(dir, `${name}.o`);
  writeFileSync(c, src);
  await execCheck("gcc", ["-O2", "-ffunction-sections", "-c", "-o", o, c]);
  return readElf(readFileSync(o), o);
}

const pointer = (kind: string, fn: string) =>
  `static void *__cb_${kind} __attribute__((used, section("${callbackSectionName(kind as "pre_patch")}"))) = (void *)${fn};\n`;

test("takeCallbacks() names each callback with a global alias and drops the callback sections", async () => {
  const o = await compiled(
    "two",
    `static int before(void *obj) { return obj != 0; }
static void after_unpatch(void *obj) { (void)obj; }
${pointer("pre_patch", "before")}${pointer("post_unpatch", "after_unpatch")}`,
  );
  const found = takeCallbacks(o, "__kpts_0_cb");
  assert.deepEqual(found, { pre_patch: "__kpts_0_cb_pre_patch", post_unpatch: "__kpts_0_cb_post_unpatch" });
  for (const [kind, fn] of [
    ["pre_patch", "before"],
    ["post_unpatch", "after_unpatch"],
  ] as const) {
    const alias = o.lookupSymbol(`__kpts_0_cb_${kind}`);
    const target = o.lookupSymbol(fn);
    assert.equal(alias.type, STT_FUNC);
    assert.equal(alias.bind, STB_GLOBAL);
    assert.equal(alias.section, target.section, `${kind} aliases ${fn}`);
    assert.equal(alias.value, target.value);
    assert.equal(o.findSection(callbackSectionName(kind)), undefined, "the section is gone");
  }
});

test("takeCallbacks() refuses a callback section of an unknown kind", async () => {
  const o = await compiled("bad", `static void f(void) {}\n${pointer("pre_load", "f")}`);
  assert.throws(
    () => takeCallbacks(o, "__t"),
    (e: unknown) => isKpatchError(e) && e.code === "KLP_BAD_CALLBACK" && /pre_patch/.test(e.message),
  );
});
