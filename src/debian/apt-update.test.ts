import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { exec } from "../util/exec.js";
import { isListsLocked, waitForAptLists } from "./apt-update.js";

/** A private apt state with no sources: `update` takes its lists lock and fetches nothing. */
function privateApt(dir: string): string[] {
  mkdirSync(join(dir, "lists", "partial"), { recursive: true });
  mkdirSync(join(dir, "cache", "archives", "partial"), { recursive: true });
  writeFileSync(join(dir, "status"), "");
  return [
    ["Dir::Etc::SourceList", "/dev/null"],
    ["Dir::Etc::SourceParts", "/dev/null"],
    ["Dir::State::Lists", join(dir, "lists")],
    ["Dir::State::status", join(dir, "status")],
    ["Dir::Cache", join(dir, "cache")],
    ["APT::Sandbox::User", "root"],
  ].flatMap(([k, v]) => ["-o", `${k}=${v}`]);
}

/** Holds `file`'s fcntl lock (apt's kind) for `ms`; resolves once it holds it. */
function holdLock(file: string, ms: number): Promise<{ done: Promise<void> }> {
  const script = `import fcntl,os,sys,time\nf=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT,0o640)\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint("held",flush=True)\ntime.sleep(float(sys.argv[2]))\n`;
  const child = spawn("python3", ["-c", script, file, String(ms / 1000)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const done = new Promise<void>((resolve) => child.on("close", () => resolve()));
  return new Promise((resolve) => child.stdout.once("data", () => resolve({ done })));
}

test("waitForAptLists() waits for another apt run's lists lock, where plain apt-get update fails at once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "apt-update-"));
  try {
    const options = privateApt(dir);
    const held = await holdLock(join(dir, "lists", "lock"), 4000);
    const started = Date.now();
    const once = await exec("apt-get", [...options, "update"]);
    assert.ok(isListsLocked(once), `apt-get update with the lists locked: ${once.stderr}`);
    const waited = await waitForAptLists("apt-get", [...options, "update"]);
    assert.equal(waited.code, 0, waited.stderr);
    assert.ok(Date.now() - started >= 3000, "it waited for the lock's holder");
    await held.done;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("isListsLocked() is true only for a failure on the lists lock", () => {
  const locked = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 7 (apt-get)\n";
  assert.equal(isListsLocked({ code: 100, stderr: locked }), true);
  assert.equal(
    isListsLocked({ code: 100, stderr: "E: Unable to lock directory /var/lib/apt/lists/\n" }),
    true,
  );
  assert.equal(isListsLocked({ code: 100, stderr: "E: Failed to fetch http://deb.debian.org/...\n" }), false);
  assert.equal(isListsLocked({ code: 0, stderr: locked }), false);
});
