/**
 * The run-pre check on Debian's stock 6.12 kernels (kpatch-build --kernel-release, trees prepared
 * in the cache): the 6.12.118 source matches its own image (no false refusal), and the 6.12.115
 * source checked against the 6.12.118 image is refused, naming exactly the functions the updates
 * changed (fs/dcache.c, changed by 6.12.117 and not since: dentry_unlink_inode and __dentry_kill).
 * Both trees are the ones npm test's other files prepare (kpatch-build-distro, triage-distro), so
 * a bare machine runs it too; skipped, saying why, when they are not in the cache (a cold
 * preparation takes minutes).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { findDebianPackage } from "../src/debian/debian-package.js";
import type { RunPreReport } from "../src/run-pre/run-pre-check.js";
import { cachePath } from "../src/util/cache-dir.js";

const run = promisify(execFile);
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");

function prepared(kver: string): boolean {
  const dir = cachePath("distro");
  return (
    existsSync(dir) &&
    readdirSync(dir).some((d) => d.startsWith(`${kver}-`) && existsSync(join(dir, d, "ready.json")))
  );
}

const image118 = findDebianPackage("linux-image-6.12.118+deb12-amd64-unsigned", "6.12.118-1~deb12u1");
const ready = prepared("6.12.118+deb12-amd64") && prepared("6.12.115+deb12-amd64") && image118;
const why = "the stock 6.12.115 and 6.12.118 trees are not prepared (kpatch-build --kernel-release KVER)";

async function check(args: string[]): Promise<{ code: number; report: RunPreReport }> {
  const r = await run("node", [cli, "--check-only", "--json", ...args], { maxBuffer: 64 << 20 }).then(
    (x) => ({ code: 0, stdout: x.stdout }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
  return { code: r.code, report: JSON.parse(r.stdout) as RunPreReport };
}

describe("run-pre check on Debian's stock 6.12", { skip: ready ? false : why }, () => {
  test("the 6.12.118 source matches the 6.12.118 image", async () => {
    const { code, report } = await check([
      "--kernel-release",
      "6.12.118+deb12-amd64",
      "fs/dcache.c",
      "kernel/sys.c",
    ]);
    assert.equal(code, 0);
    assert.equal(report.mismatched, 0);
    assert.ok(report.matched > 200, `${report.matched} matched`);
    // kernel/sys.o's tracepoints: jmp in the object, nop in the image.
    assert.ok(report.functions.some((f) => f.allowed.some((a) => a.kind === "static-branch")));
  });

  test("the 6.12.115 source against the 6.12.118 image is refused, naming what the update changed", async () => {
    const image = join(image118!.root, "boot", "vmlinuz-6.12.118+deb12-amd64");
    const { code, report } = await check([
      "--kernel-release",
      "6.12.115+deb12-amd64",
      "--image",
      image,
      "fs/dcache.c",
    ]);
    assert.equal(code, 4);
    assert.deepEqual(
      report.functions
        .filter((f) => f.status === "mismatch")
        .map((f) => f.function)
        .sort(),
      ["__dentry_kill", "dentry_unlink_inode"],
    );
  });
});
