import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { fakeModule } from "../../test/helpers/fake-kernel.js";
import { readModuleFile } from "./modinfo.js";
import { insertModule } from "./modules.js";

/**
 * A stand-in insmod first on PATH (nothing is loaded into this machine): it copies the file it
 * is given, and records the path and its directory's mode, then exits with `status`.
 */
function fakeInsmod(status: number): { bin: string; seen: string } {
  const bin = mkdtempSync(join(tmpdir(), "kpatch-insmod-"));
  const seen = join(bin, "seen");
  writeFileSync(
    join(bin, "insmod"),
    `#!/bin/sh\ncp "$1" "${seen}.ko"\necho "$1" > "${seen}.path"\nstat -c %a "$(dirname "$1")" > "${seen}.mode"\n` +
      `[ ${status} = 0 ] || echo "insmod: ERROR: could not insert module $1: Invalid parameters" >&2\nexit ${status}\n`,
  );
  chmodSync(join(bin, "insmod"), 0o755);
  return { bin, seen };
}

async function withPath<T>(bin: string, run: () => Promise<T>): Promise<T> {
  const saved = process.env["PATH"];
  process.env["PATH"] = `${bin}:${saved}`;
  try {
    return await run();
  } finally {
    process.env["PATH"] = saved;
  }
}

test("insertModule() hands insmod the bytes that were checked, even when the file is swapped after the check", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kpatch-swap-"));
  const file = join(dir, "fix.ko");
  writeFileSync(file, fakeModule({ name: "fix", livepatch: "Y", vermagic: "6.12.57 SMP " }));
  const { bytes } = readModuleFile(file); // what kpatch load checks
  const swapped = fakeModule({
    name: "fix",
    livepatch: "Y",
    vermagic: "6.12.57 SMP ",
    description: "swapped",
  });
  writeFileSync(file, swapped); // the race: another module in place before insmod
  const { bin, seen } = fakeInsmod(0);
  await withPath(bin, () => insertModule(bytes, "fix", file));
  assert.ok(Buffer.from(bytes).equals(readFileSync(`${seen}.ko`)), "insmod got the checked bytes");
  const given = readFileSync(`${seen}.path`, "utf8").trim();
  assert.notEqual(given, file);
  assert.equal(readFileSync(`${seen}.mode`, "utf8").trim(), "700", "the copy's directory is owner-only");
  assert.equal(existsSync(given), false, "the private copy is removed after insmod");
});

test("insertModule() names the user's file, not the private copy, when insmod fails, and removes the copy", async () => {
  const bytes = fakeModule({ name: "fix", livepatch: "Y" });
  const { bin, seen } = fakeInsmod(1);
  await assert.rejects(
    withPath(bin, () => insertModule(bytes, "fix", "/srv/patches/fix.ko")),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, "KPATCH_INSMOD_FAILED");
      assert.match(
        e.message,
        /^Cannot load fix: insmod failed: could not insert module \/srv\/patches\/fix\.ko: Invalid parameters/,
      );
      return true;
    },
  );
  assert.equal(existsSync(readFileSync(`${seen}.path`, "utf8").trim()), false);
});
