/**
 * The three parts together: a module built by kpatch-build from a source patch, managed by the
 * kpatch command running inside the lab guest (info, load, list, unload).
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { kpatchBuild } from "../src/kpatch-build/kpatch-build.js";
import { labTree } from "../src/lab/lab-tree.js";
import { normalizeModuleName } from "../src/util/module-name.js";
import { Progress } from "../src/util/progress.js";
import { lab, runKpatchSteps } from "./helpers/kpatch-fixtures.js";

test("kpatch info/load/list/unload of a kpatch-build module, in the lab guest", async () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-with-build-"));
  try {
    const built = await kpatchBuild({
      tree: labTree(lab),
      patches: [
        join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", lab.series, "cmdline.patch"),
      ],
      outDir: out,
      replace: true,
      jobs: 2,
      skipCleanup: false,
      progress: new Progress({ quiet: true }),
    });
    const ko = `${built.name}.ko`;
    const name = normalizeModuleName(built.name);
    const { step } = await runKpatchSteps(
      [
        { name: "info", command: `kpatch info --json ${ko}` },
        { name: "load", command: `kpatch load ${ko}` },
        { name: "cmdline-patched", command: "cat /proc/cmdline" },
        { name: "list", command: "kpatch list --json" },
        { name: "unload", command: `kpatch unload ${name}` },
        { name: "cmdline-original", command: "cat /proc/cmdline" },
      ],
      { files: [built.module] },
    );
    const info = step("info");
    assert.equal(info.exitCode, 0, info.output);
    assert.match(info.output, /cmdline_proc_show/);
    assert.equal(step("load").exitCode, 0, step("load").output);
    // The lab kernel has /proc/kcore, as Debian's: the module's run-pre record (the original
    // cmdline_proc_show as built) is compared with the running code before the module loads.
    assert.match(
      step("load").output,
      /run-pre check: [1-9]\d* functions? checked against \/proc\/kcore: .*0 mismatched/,
    );
    assert.match(step("cmdline-patched").output, / kpatch-ts=live\n$/);
    const list = step("list");
    assert.equal(list.exitCode, 0, list.output);
    assert.match(list.output, new RegExp(`"${name}"`));
    assert.equal(step("unload").exitCode, 0, step("unload").output);
    assert.doesNotMatch(step("cmdline-original").output, /kpatch-ts=live/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
