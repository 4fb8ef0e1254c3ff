import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { parentDirs, S_IFCHR, S_IFDIR, S_IFREG, writeCpio } from "./cpio.js";
import { runArchive } from "./initramfs.js";

test("writeCpio() output is listed and extracted byte-exact by GNU cpio", () => {
  const dir = mkdtempSync(join(tmpdir(), "cpio-test-"));
  try {
    const odd = new Uint8Array(4097).map((_, i) => (i * 7) & 0xff);
    const archive = writeCpio([
      { name: "a", mode: S_IFDIR | 0o755 },
      { name: "a/odd.bin", mode: S_IFREG | 0o644, data: odd },
      { name: "a/x", mode: S_IFREG | 0o755, data: new TextEncoder().encode("hi\n") },
      { name: "console", mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    ]);
    assert.equal(archive.length % 4, 0);
    const file = join(dir, "t.cpio");
    writeFileSync(file, archive);
    const list = execFileSync("cpio", ["-itv", "-F", file], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    assert.match(list, /^drwxr-xr-x .* a$/m);
    assert.match(list, /^-rw-r--r-- .* 4097 .* a\/odd\.bin$/m);
    assert.match(list, /^crw------- .* 5,\s+1 .* console$/m);
    const out = join(dir, "x");
    execFileSync("cpio", ["-id", "--quiet", "-D", out, "-F", file, "a/odd.bin", "a/x"]);
    assert.deepEqual(new Uint8Array(readFileSync(join(out, "a/odd.bin"))), odd);
    assert.equal(readFileSync(join(out, "a/x"), "utf8"), "hi\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("parentDirs() lists every parent once, parents first", () => {
  assert.deepEqual(
    parentDirs(["lab/files/a.ko", "lab/cmds/000"]).map((e) => e.name),
    ["lab", "lab/cmds", "lab/files"],
  );
});

test("runArchive() rejects a file it cannot read, naming it", () => {
  assert.throws(() => runArchive(["/nonexistent/x.ko"], []), {
    code: "LAB_FILE",
    message: /\/nonexistent\/x\.ko/,
  });
});
