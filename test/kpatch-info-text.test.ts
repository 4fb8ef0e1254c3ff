/**
 * kpatch info's text form on a module whose modinfo strings carry newlines and terminal escape
 * sequences: every line is ours, none added by the module. Runs the built command on this
 * machine on a module file (nothing is loaded; the state directory is a temporary one).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { exec } from "../src/util/exec.js";
import { fakeModule } from "./helpers/fake-kernel.js";

const work = mkdtempSync(join(tmpdir(), "kpatch-info-text-"));
after(() => rmSync(work, { recursive: true, force: true }));

it("kpatch info escapes control characters of modinfo strings: no fake line, no escape sequence", async () => {
  const file = join(work, "sneaky.ko");
  writeFileSync(
    file,
    fakeModule({
      name: "sneaky",
      livepatch: "Y",
      vermagic: `${release()} SMP `,
      description: "harmless\n  signed:           yes (PKCS#7)\x1b[2J",
      license: "GPL\r\x1b]0;title\x07",
    }),
  );
  const r = await exec(
    process.execPath,
    [join(import.meta.dirname, "..", "src", "cli", "kpatch.js"), "info", file],
    {
      env: { ...process.env, KPATCH_LIB_DIR: join(work, "lib") },
      timeoutMs: 20_000,
    },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /(?!\n)\p{Cc}/u, "no control character but the line ends");
  assert.deepEqual(r.stdout.match(/^ *signed:.*$/gm), ["  signed:           no"]);
  assert.match(r.stdout, /^ {2}description: {6}harmless\\n {2}signed: {11}yes \(PKCS#7\)\\x1b\[2J$/m);
  assert.match(r.stdout, /^ {2}license: {9}GPL\\r\\x1b\]0;title\\x07$/m);
});
