/**
 * kpatch-build stopped by a signal in the middle of its patched build: exit 130, the patch
 * reverted, the tree lock released, no module written. The patch touches fs/proc/internal.h,
 * which every fs/proc object includes, so the build has many objects and is still running when
 * the signal comes.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { DEFAULT_SERIES } from "../src/lab/paths.js";
import { requireLab } from "../src/lab/setup.js";

const lab = requireLab(DEFAULT_SERIES);
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const patch = join(
  import.meta.dirname,
  "..",
  "..",
  "test",
  "fixtures",
  "patches",
  lab.series,
  "proc-header.patch",
);

test("kpatch-build stopped by SIGTERM during the patched build restores the tree and exits 130", async () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-build-int-"));
  const header = join(lab.srcDir, "fs", "proc", "internal.h");
  const before = readFileSync(header);
  try {
    const child = spawn("node", [cli, "-o", out, patch], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let sent = false;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /\[patched build\]/.test(stderr)) {
        sent = true;
        child.kill("SIGTERM");
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.ok(sent, `never reached the patched build:\n${stderr}`);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGTERM: stopping, restoring the source tree/);
    assert.match(stderr, /\[INTERRUPTED\]/);
    assert.deepEqual(readFileSync(header), before, "the header is as before");
    assert.equal(existsSync(join(lab.srcDir, ".kpatch-ts-build.lock")), false, "the tree lock is released");
    assert.deepEqual(readdirSync(out), [], "no module written");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
