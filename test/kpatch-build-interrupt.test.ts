/**
 * kpatch-build stopped in the middle of its patched build: by SIGTERM, by a closed terminal
 * (SIGHUP), by a terminal's Ctrl-C (SIGINT to the whole process group, gcc included): exit 130,
 * INTERRUPTED, the files as before, the tree lock released, no module written. Killed outright
 * (SIGKILL), it leaves the tree patched and its saved files in the lock; the next run restores
 * them. The patch touches fs/proc/internal.h, which every fs/proc object includes, so the build
 * has many objects and is still compiling when the signal comes.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fixturePatch, KPATCH_BUILD, lab } from "./helpers/kpatch-build-fixtures.js";
import { cleanTreeState, lockHolder } from "./helpers/tree-state.js";

const cli = KPATCH_BUILD;
const patch = fixturePatch("proc-header");

interface Run {
  child: ChildProcess;
  stderr: () => string;
  code: Promise<number | null>;
}

function start(args: string[], options: { detached?: boolean; env?: NodeJS.ProcessEnv } = {}): Run {
  // The lab kernel explicitly: on a Debian host running a Debian kernel the default is that kernel.
  const child = spawn("node", [cli, "--kernel", lab.series, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
    env: options.env ?? process.env,
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const code = new Promise<number | null>((resolve) => child.on("close", resolve));
  return { child, stderr: () => stderr, code };
}

/** Resolves once the run is compiling the patched objects (and gcc has had time to start). */
async function inPatchedBuild(run: Run): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (/\[patched build\]/.test(run.stderr())) resolve();
      else if (run.child.exitCode !== null)
        reject(new Error(`never reached the patched build:\n${run.stderr()}`));
      else setTimeout(check, 50);
    };
    check();
  });
  await new Promise((r) => setTimeout(r, 400));
}

for (const [what, signal, group] of [
  ["SIGTERM", "SIGTERM", false],
  ["a closed terminal (SIGHUP)", "SIGHUP", false],
  ["Ctrl-C in its terminal (SIGINT to the process group, gcc included)", "SIGINT", true],
] as const) {
  test(`kpatch-build stopped by ${what} during the patched build restores the tree and exits 130`, async () => {
    const out = mkdtempSync(join(tmpdir(), "kpatch-build-int-"));
    const before = await cleanTreeState(lab.srcDir, patch);
    try {
      const run = start(["-o", out, patch], { detached: group });
      await inPatchedBuild(run);
      if (group) process.kill(-run.child.pid!, signal);
      else run.child.kill(signal);
      const code = await run.code;
      assert.equal(code, 130, run.stderr());
      assert.match(run.stderr(), new RegExp(`${signal}: stopping, restoring the source tree`));
      assert.match(run.stderr(), /\[INTERRUPTED\]/);
      assert.doesNotMatch(run.stderr(), /BUILD_FAILED/);
      assert.notEqual(lockHolder(lab.srcDir), run.child.pid, "the tree lock is released");
      assert.equal(
        await cleanTreeState(lab.srcDir, patch),
        before,
        "the files are as before, nothing left beside them",
      );
      assert.deepEqual(readdirSync(out), [], "no module written");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}

test("kpatch-build killed outright (SIGKILL) while the tree is patched: the next run restores it", async () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-build-kill-"));
  const cmdline = fixturePatch("cmdline");
  const before = await cleanTreeState(lab.srcDir, patch);
  const beforeCmdline = await cleanTreeState(lab.srcDir, cmdline);
  try {
    // Its work directory is left behind: keep it in ours.
    const env = { ...process.env, TMPDIR: out };
    const killed = start(["-o", out, patch], { env });
    await inPatchedBuild(killed);
    killed.child.kill("SIGKILL");
    await killed.code;
    assert.equal(lockHolder(lab.srcDir), killed.child.pid, "the killed run left its lock");
    const next = start(["-o", out, cmdline], { env });
    assert.equal(await next.code, 0, next.stderr());
    // The next run to take the tree (ours, or another one waiting for it) restored the files.
    assert.notEqual(lockHolder(lab.srcDir), next.child.pid);
    assert.equal(await cleanTreeState(lab.srcDir, patch), before);
    assert.equal(await cleanTreeState(lab.srcDir, cmdline), beforeCmdline);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
