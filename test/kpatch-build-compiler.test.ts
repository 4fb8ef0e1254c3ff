/**
 * The kernel's own compiler, always: on this Debian 12 machine (gcc 12), kpatch-build for the
 * newest Debian 13 kernel (built by gcc 14) compiles in a trixie build root holding that gcc
 * (src/debian/build-root.ts), and the run-pre check finds the original build byte-identical to
 * the image's code, which proves the compiler; the module holds code of that one gcc only. With
 * build roots turned off (KPATCH_TS_BUILD_ROOT=off) the same command is refused naming both
 * compilers, and nothing is built. Needs root and Debian's mirrors (skipped saying so without).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { fetchDebianPackage } from "../src/debian/debian-package.js";
import { parseRelease, releasePackages } from "../src/debian/kernel-release.js";
import { compilerVersion } from "../src/kpatch-build/check-tree.js";
import { parseConfig } from "../src/kpatch-build/kernel-config.js";
import { cachePath } from "../src/util/cache-dir.js";
import { newestDebianKernel } from "./helpers/debian-suites.js";

const run = promisify(execFile);
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const patch = join(import.meta.dirname, "..", "..", "examples", "6.12", "proc-cmdline.patch");

async function kpatchBuild(kver: string, out: string, env: NodeJS.ProcessEnv = {}) {
  try {
    const r = await run("node", [cli, "--kernel-release", kver, "-o", out, "-j", "2", patch], {
      env: { ...process.env, ...env },
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** The newest Debian 13 kernel and the compiler its config names; or why the test cannot run. */
async function target(): Promise<{ kernelRelease: string; compiler: string } | { skip: string }> {
  if (process.getuid?.() !== 0) return { skip: "a build root needs root (debootstrap, chroot)" };
  const newest = await newestDebianKernel(13);
  if ("skip" in newest) return newest;
  const headers = releasePackages(parseRelease(newest.kernelRelease)).headers;
  const pkg = await fetchDebianPackage(headers, newest.version, newest.apt.options);
  const config = parseConfig(readFileSync(join(pkg.root, "usr", "src", headers, ".config"), "utf8"));
  const compiler = config.get("CONFIG_CC_VERSION_TEXT")?.replace(/^"|"$/g, "") ?? "";
  if ((await compilerVersion(compiler.split(" ")[0]!)) === compiler)
    return { skip: `this machine has ${compiler} itself: no mismatch to show` };
  return { kernelRelease: newest.kernelRelease, compiler };
}

test("a compiler mismatch with build roots off is refused naming both compilers, nothing built", async (t) => {
  const kernel = await target();
  if ("skip" in kernel) return t.skip(kernel.skip);
  // A cache of its own (the Debian packages and apt lists shared): what the run leaves is seen.
  const cache = mkdtempSync(join(tmpdir(), "kpatch-build-compiler-cache-"));
  const out = mkdtempSync(join(tmpdir(), "kpatch-build-compiler-out-"));
  try {
    symlinkSync(cachePath("debian"), join(cache, "debian"));
    symlinkSync(cachePath("apt"), join(cache, "apt"));
    const r = await kpatchBuild(kernel.kernelRelease, out, {
      KPATCH_TS_CACHE: cache,
      KPATCH_TS_BUILD_ROOT: "off",
    });
    assert.equal(r.code, 1, r.stderr);
    const here = (await compilerVersion("gcc")) ?? "none";
    const line = r.stderr.trim().split("\n").at(-1) ?? "";
    assert.ok(line.includes(`built with '${kernel.compiler}'`), line);
    assert.ok(line.includes(here), `names this machine's gcc (${here}): ${line}`);
    assert.match(line, /build roots are off .*\[TREE_COMPILER\]$/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    // apt-answers: the package queries' answers (src/debian/apt-answers.ts), which come first.
    assert.deepEqual(
      readdirSync(cache)
        .filter((e) => e !== "apt-answers")
        .sort(),
      ["apt", "debian"],
      "no tree, source, build root or object made",
    );
    assert.deepEqual(readdirSync(out), [], "no module written");
  } finally {
    rmSync(cache, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
});

test("the same kernel is built in its suite's build root, its originals byte-identical to the image's code", async (t) => {
  const kernel = await target();
  if ("skip" in kernel) return t.skip(kernel.skip);
  const out = mkdtempSync(join(tmpdir(), "kpatch-build-compiler-out-"));
  try {
    const r = await kpatchBuild(kernel.kernelRelease, out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^vmlinux: cmdline_proc_show$/m);
    assert.match(
      r.stderr,
      new RegExp(`compiling with ${kernel.compiler.replace(/[()+.]/g, "\\$&")} in the trixie build root`),
    );
    assert.match(
      r.stderr,
      /\d+ functions checked against .*: (\d+) matched, 0 with allowed differences, 0 mismatched/,
    );
    const comment = (await run("readelf", ["-p", ".comment", join(out, "livepatch-proc-cmdline.ko")])).stdout;
    const compilers = new Set([...comment.matchAll(/GCC: (.*)$/gm)].map((m) => m[1]!.trim()));
    assert.deepEqual([...compilers], [kernel.compiler.replace(/^\S+ /, "")], "one compiler, the kernel's");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
