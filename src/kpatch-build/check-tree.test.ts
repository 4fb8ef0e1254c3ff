import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { KpatchError } from "../util/errors.js";
import { escapeRegExp } from "../util/escape-regexp.js";
import { checkTree, compilerVersion } from "./check-tree.js";

const LIVEPATCH =
  "CONFIG_LIVEPATCH=y\nCONFIG_DYNAMIC_FTRACE_WITH_ARGS=y\nCONFIG_KALLSYMS_ALL=y\nCONFIG_MODULES=y\n";

function withConfig(ccText: string, body: (config: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "check-tree-"));
  const config = join(dir, ".config");
  writeFileSync(config, `${LIVEPATCH}CONFIG_CC_VERSION_TEXT="${ccText}"\n`);
  return body(config).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function refusal(pattern: RegExp) {
  return (e: unknown) => e instanceof KpatchError && e.code === "TREE_COMPILER" && pattern.test(e.message);
}

test("checkTree() accepts the kernel's compiler when this machine's --version says exactly it", async () => {
  const here = await compilerVersion("gcc");
  if (!here) return test.skip("this machine has no gcc");
  await withConfig(here, (config) => checkTree(config));
});

test("checkTree() refuses another version of the same gcc, naming both compilers", async () => {
  const here = await compilerVersion("gcc");
  if (!here) return test.skip("this machine has no gcc");
  const other = "gcc (Debian 1.2.3-4) 1.2.3";
  await withConfig(other, async (config) => {
    await assert.rejects(
      checkTree(config),
      refusal(new RegExp(`'gcc \\(Debian 1\\.2\\.3-4\\) 1\\.2\\.3'.*'${escapeRegExp(here)}'`)),
    );
  });
});

test("checkTree() refuses a compiler this machine lacks, naming it and this machine's gcc", async () => {
  const here = await compilerVersion("gcc");
  await withConfig("x86_64-linux-gnu-gcc-99 (Debian 99.1.0-1) 99.1.0", async (config) => {
    await assert.rejects(
      checkTree(config),
      refusal(
        new RegExp(
          `built with 'x86_64-linux-gnu-gcc-99 .*has no x86_64-linux-gnu-gcc-99 \\(its gcc: ${here ? `'${escapeRegExp(here)}'` : "none"}\\)`,
        ),
      ),
    );
  });
});

test("checkTree() refuses a compiler that is not a gcc: it cannot tell which one built the kernel", async () => {
  await withConfig("Debian clang version 19.1.7 (3)", async (config) => {
    await assert.rejects(checkTree(config), refusal(/Cannot tell which compiler/));
  });
});
