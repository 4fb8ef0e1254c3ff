/**
 * The run-pre check on the lab kernel: the e2e patches pass it (no false refusal), and original
 * builds that do not reproduce the kernel are caught, each with its report: a function edited in
 * the tree without rebuilding the kernel, a config option that changes code flipped, other
 * optimisation flags (each compiled for real from the lab tree's own kbuild command, into a
 * directory of the test's: the shared tree is never edited); and kpatch-build refuses to build
 * against a kernel image whose code differs (exit 4, no module).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import { kpatchBuild } from "../src/kpatch-build/kpatch-build.js";
import { savedCommand, sectionCommand } from "../src/kpatch-build/object-compile.js";
import { runPreStep } from "../src/kpatch-build/run-pre-step.js";
import { findDistroLab } from "../src/lab/distro.js";
import { labTree } from "../src/lab/lab-tree.js";
import { findLab } from "../src/lab/setup.js";
import { RunPreError } from "../src/run-pre/run-pre-check.js";
import { formatRunPre } from "../src/run-pre/run-pre-format.js";
import { exec } from "../src/util/exec.js";
import { Progress } from "../src/util/progress.js";
import { readCleanFile } from "./helpers/tree-state.js";

const run = promisify(execFile);
const lab = findLab("6.12");
const PATCHES = join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", "6.12");
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const work = mkdtempSync(join(tmpdir(), "run-pre-lab-"));
after(() => rmSync(work, { recursive: true, force: true }));
const quiet = () => new Progress({ quiet: true });

/** The e2e patches kpatch-build turns into modules (the refused ones stop before the check). */
const BUILT = [
  "cmdline",
  "version",
  "inline",
  "meminfo-inline",
  "syscall-notrace",
  "two-files",
  "new-global",
  "new-function",
  "callbacks",
  "shadow",
  "static-local",
  "warn",
  "module",
];

/**
 * Compiles `obj` of the lab tree with its kbuild command, changed: another source text (read from
 * stdin, its directory kept for quoted includes), an autoconf.h edited, or flags appended.
 */
async function variant(
  obj: string,
  change: { source?: (text: string) => string; autoconf?: (text: string) => string; flags?: string },
): Promise<string> {
  const tree = lab!.buildDir;
  const out = join(work, `${obj.replace(/\W/g, "_")}-${Object.keys(change).join("-")}.o`);
  let cmd = sectionCommand(savedCommand(tree, obj), obj, out);
  if (change.autoconf) {
    const inc = join(work, "autoconf", "generated");
    mkdirSync(inc, { recursive: true });
    const text = readFileSync(join(tree, "include", "generated", "autoconf.h"), "utf8");
    writeFileSync(join(inc, "autoconf.h"), change.autoconf(text));
    cmd = cmd.replace(/^(\s*\S*gcc\S*)\s/, `$1 -I${dirname(inc)} `);
  }
  let input: string | undefined;
  if (change.source) {
    const src = join(lab!.srcDir, obj.replace(/\.o$/, ".c"));
    input = change.source(await readCleanFile(lab!.srcDir, obj.replace(/\.o$/, ".c")));
    cmd = cmd.replace(` ${src}`, ` -iquote ${dirname(src)} -x c -`);
  }
  if (change.flags) cmd = cmd.replace(/^(\s*\S*gcc\S*\s.*?)( -c -o )/, `$1 ${change.flags}$2`);
  const r = await exec("sh", ["-c", cmd], { cwd: tree, ...(input !== undefined ? { input } : {}) });
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function expectMismatch(obj: string, orig: string, fn: string): Promise<string> {
  const tree = labTree(lab!);
  const report = { changed: [{ originalName: fn, sympos: 0, children: [] }], carried: [], klp: [] };
  const err = await runPreStep(tree, [{ path: obj, target: "vmlinux", orig, report }], quiet()).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof RunPreError, `expected a run-pre mismatch for ${fn}, got ${err}`);
  const bad = err.report.functions.find((f) => f.status === "mismatch")!;
  assert.equal(bad.function, fn);
  assert.equal(bad.object, obj);
  const text = formatRunPre(err.report);
  assert.match(text, /original build: \S.*\n\s+target kernel: {2}\S/);
  assert.match(text, /likely causes, most likely first:\n\s+1\. /);
  return text;
}

describe("run-pre check on the lab kernel", {
  skip: lab ? false : "the 6.12 lab kernel is not built",
}, () => {
  test("every e2e patch that builds passes the check (check-only)", async () => {
    for (const patch of BUILT) {
      const r = await kpatchBuild({
        name: `livepatch-${patch}`,
        tree: labTree(lab!),
        patches: [join(PATCHES, `${patch}.patch`)],
        outDir: work,
        replace: true,
        jobs: 2,
        skipCleanup: false,
        progress: quiet(),
        checkOnly: true,
      }).catch((e: unknown) => assert.fail(`${patch}: ${e}`));
      assert.equal(r.runPre.mismatched, 0, `${patch}: ${formatRunPre(r.runPre)}`);
      assert.ok(r.runPre.matched + r.runPre.allowed >= 1, `${patch}: nothing checked`);
      assert.equal(r.module, "");
    }
    assert.deepEqual(
      readdirSync(work).filter((f) => f.endsWith(".ko")),
      [],
    );
  });

  test("a function edited in the tree without rebuilding the kernel is caught", async () => {
    const orig = await variant("fs/proc/cmdline.o", {
      source: (t) => t.replace("seq_puts(m, saved_command_line);", 'seq_puts(m, "edited");'),
    });
    await expectMismatch("fs/proc/cmdline.o", orig, "cmdline_proc_show");
  });

  test("a config option that changes code, flipped, is caught", async () => {
    const orig = await variant("fs/proc/meminfo.o", {
      autoconf: (t) => `${t}\n#define CONFIG_MEMORY_FAILURE 1\n`,
    });
    await expectMismatch("fs/proc/meminfo.o", orig, "meminfo_proc_show");
  });

  test("other optimisation flags are caught", async () => {
    const orig = await variant("kernel/sys.o", { flags: "-O1" });
    await expectMismatch("kernel/sys.o", orig, "__do_sys_newuname");
  });
});

// Debian's stock 6.12 (npm test sets it up): built from another tree, config and compiler than the lab's.
const stock = findDistroLab("6.12");
describe("kpatch-build against another kernel's image", {
  skip:
    lab && stock
      ? false
      : "needs the 6.12 lab and Debian's stock 6.12 kernel (kpatch-lab setup --distro 6.12)",
}, () => {
  test("refuses with exit 4 and the report, and builds nothing", async () => {
    const out = mkdtempSync(join(work, "out-"));
    const image = stock!.bzImage;
    const patch = join(PATCHES, "meminfo-inline.patch");
    const err = await run("node", [cli, "--image", image, "-o", out, patch]).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    assert.equal(err?.code, 4, err?.stderr);
    assert.match(err?.stderr ?? "", /error: meminfo_proc_show\+0x[0-9a-f]+: .*\[RUNPRE_MISMATCH\]/);
    assert.match(err?.stderr ?? "", /MISMATCH fs\/proc\/meminfo\.o: meminfo_proc_show/);
    assert.deepEqual(readdirSync(out), []);
    assert.equal(existsSync(join(out, "livepatch-meminfo-inline.ko")), false);
  });
});
