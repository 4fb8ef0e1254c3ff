import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { KERNEL_PATHS } from "./kernel-paths.js";
import { moduleSignature, signaturesEnforced } from "./module-signature.js";

const MARKER = "~Module signature appended~\n";

/** An ELF-ish body, a signature of `sigLen` bytes and struct module_signature, as sign-file appends. */
function signed(sigLen: number, idType = 2, declared = sigLen): Buffer {
  const info = Buffer.alloc(12);
  info[0] = 0; // algo (unused for PKCS#7)
  info[1] = 0; // hash
  info[2] = idType;
  info.writeUInt32BE(declared, 8);
  return Buffer.concat([Buffer.from("\x7fELF body"), Buffer.alloc(sigLen, 0x30), info, Buffer.from(MARKER)]);
}

test("moduleSignature() reads sign-file's trailer: kind and length; none, a bad length or a cut marker is unsigned", () => {
  assert.deepEqual(moduleSignature(signed(466)), { kind: "PKCS#7", length: 466 });
  assert.deepEqual(moduleSignature(signed(64, 1)), { kind: "id_type 1", length: 64 });
  assert.equal(moduleSignature(Buffer.from("\x7fELF body without a signature")), undefined);
  assert.equal(moduleSignature(signed(16, 2, 100_000)), undefined, "sig_len beyond the file");
  assert.equal(moduleSignature(signed(16, 2, 0)), undefined, "an empty signature");
  const cut = signed(16);
  assert.equal(moduleSignature(cut.subarray(0, cut.length - 1)), undefined);
  assert.equal(moduleSignature(Buffer.from(MARKER)), undefined, "the marker alone");
});

test("signaturesEnforced() reads sig_enforce (Y or N); without the parameter, not enforced", () => {
  const dir = mkdtempSync(join(tmpdir(), "sig-enforce-"));
  try {
    const paths = { ...KERNEL_PATHS, sysModule: dir };
    assert.equal(signaturesEnforced(paths), false);
    mkdirSync(join(dir, "module", "parameters"), { recursive: true });
    writeFileSync(join(dir, "module", "parameters", "sig_enforce"), "N\n");
    assert.equal(signaturesEnforced(paths), false);
    writeFileSync(join(dir, "module", "parameters", "sig_enforce"), "Y\n");
    assert.equal(signaturesEnforced(paths), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
