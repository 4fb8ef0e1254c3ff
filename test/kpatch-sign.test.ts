/**
 * Module signing end to end, on a kernel that enforces it: kpatch-build --sign KEY CERT signs
 * the patch module with the kernel's own scripts/sign-file, and the lab kernel (CONFIG_MODULE_SIG,
 * its build's key in its keyring) booted with module.sig_enforce=1 loads it with kpatch load;
 * the same patch unsigned is refused by kpatch before insmod, saying why; one signed with a key
 * the kernel does not trust is refused by the kernel, and kpatch shows the kernel's reason.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readConfig } from "../src/kpatch-build/kernel-config.js";
import { fixturePatch, KPATCH_BUILD } from "./helpers/kpatch-build-fixtures.js";
import { lab, runKpatchSteps, type Step } from "./helpers/kpatch-fixtures.js";

const KPATCH = join(import.meta.dirname, "..", "src", "cli", "kpatch.js");
const PATCH = fixturePatch("cmdline");
const KEY = join(lab.buildDir, "certs", "signing_key.pem");
const CERT = join(lab.buildDir, "certs", "signing_key.x509");

const skip =
  readConfig(lab.config).get("CONFIG_MODULE_SIG") !== "y"
    ? "the lab kernel has no CONFIG_MODULE_SIG (an older lab setup: kpatch-lab setup)"
    : !existsSync(KEY)
      ? `the lab build has no signing key ${KEY}`
      : false;

function build(out: string, name: string, sign?: [string, string]) {
  const args = [
    KPATCH_BUILD,
    "--kernel",
    lab.series,
    "-n",
    name,
    "-o",
    out,
    ...(sign ? ["--sign", ...sign] : []),
    PATCH,
  ];
  return spawnSync("node", args, { encoding: "utf8" });
}

describe("signed patch modules on a kernel that enforces signatures (module.sig_enforce=1)", { skip }, () => {
  const out = mkdtempSync(join(tmpdir(), "kpatch-sign-"));
  const builds: Record<string, ReturnType<typeof build>> = {};
  let step: Awaited<ReturnType<typeof runKpatchSteps>>["step"];
  after(() => rmSync(out, { recursive: true, force: true }));

  before(async () => {
    // A key of nobody the kernel knows: a self-signed certificate made here.
    const foreign = join(out, "foreign.pem");
    const ssl = spawnSync("openssl", [
      "req",
      "-new",
      "-nodes",
      "-utf8",
      "-sha256",
      "-days",
      "1",
      "-batch",
      "-x509",
      "-subj",
      "/CN=not trusted by the lab kernel",
      "-outform",
      "PEM",
      "-out",
      foreign,
      "-keyout",
      foreign,
    ]);
    assert.equal(ssl.status, 0, String(ssl.stderr));
    builds["signed"] = build(out, "livepatch-signed", [KEY, CERT]);
    builds["unsigned"] = build(out, "livepatch-unsigned");
    builds["foreign"] = build(out, "livepatch-foreign", [foreign, foreign]);
    builds["missing-key"] = build(join(out, "none"), "livepatch-none", [join(out, "no-such-key.pem"), CERT]);
    for (const b of ["signed", "unsigned", "foreign"]) assert.equal(builds[b]!.status, 0, builds[b]!.stderr);
    const steps: Step[] = [
      { name: "enforced", command: "cat /sys/module/module/parameters/sig_enforce" },
      { name: "info-signed", command: "kpatch info livepatch-signed.ko" },
      { name: "info-unsigned", command: "kpatch info livepatch-unsigned.ko" },
      { name: "unsigned", command: "kpatch load livepatch-unsigned.ko" },
      { name: "foreign", command: "kpatch load livepatch-foreign.ko" },
      { name: "signed", command: "kpatch load livepatch-signed.ko" },
      { name: "patched", command: "cat /proc/cmdline" },
      { name: "unload", command: "kpatch unload livepatch_signed" },
      {
        name: "after",
        command: "cat /proc/cmdline; ls /sys/kernel/livepatch; grep -c livepatch_ /proc/modules",
      },
    ];
    ({ step } = await runKpatchSteps(steps, {
      append: "module.sig_enforce=1",
      files: ["signed", "unsigned", "foreign"].map((n) => join(out, `livepatch-${n}.ko`)),
    }));
  });

  it("kpatch-build --sign signs with the kernel's sign-file; a missing key is a one-line error and no module", () => {
    assert.match(builds["signed"]!.stderr, /run-pre record, signed in/);
    const info = spawnSync("node", [KPATCH, "info", join(out, "livepatch-signed.ko")], { encoding: "utf8" });
    assert.match(info.stdout, /signed: +yes \(PKCS#7, \d+ bytes\)/);
    const unsigned = spawnSync("node", [KPATCH, "info", join(out, "livepatch-unsigned.ko")], {
      encoding: "utf8",
    });
    assert.match(unsigned.stdout, /signed: +no\n/);
    const missing = builds["missing-key"]!;
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(missing.stderr, /error: Cannot read .*no-such-key\.pem: no such file/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, "no stack trace");
    assert.ok(
      !existsSync(join(out, "none")) || readdirSync(join(out, "none")).length === 0,
      "no module written",
    );
  });

  it("in the guest the kernel enforces signatures; kpatch info says which module is signed", () => {
    assert.equal(step("enforced").output.trim(), "Y");
    assert.match(step("info-signed").output, /signed: +yes \(PKCS#7/);
    assert.match(step("info-unsigned").output, /signed: +no\n/);
  });

  it("an unsigned patch is refused by kpatch before insmod, saying why and how to sign it", () => {
    const r = step("unsigned");
    assert.equal(r.exitCode, 1, r.output);
    assert.match(
      r.output,
      /Cannot load livepatch_unsigned: the kernel enforces module signatures \(sig_enforce\) and livepatch-unsigned\.ko is not signed; build it with 'kpatch-build --sign KEY CERT'/,
    );
  });

  it("a patch signed with a key the kernel does not trust is refused by the kernel; kpatch shows its reason", (t) => {
    const r = step("foreign");
    t.diagnostic(r.output.trim());
    assert.equal(r.exitCode, 1, r.output);
    assert.match(
      r.output,
      /Cannot load livepatch_foreign: insmod failed: .*Key was rejected by service \(the kernel enforces module signatures and does not accept this module's/,
    );
  });

  it("the patch signed with the kernel's key loads, patches and unloads", () => {
    const r = step("signed");
    assert.equal(r.exitCode, 0, r.output);
    assert.match(step("patched").output, /kpatch-ts=live/);
    assert.equal(step("unload").exitCode, 0, step("unload").output);
    const after = step("after").output;
    assert.doesNotMatch(after, /kpatch-ts=live/);
    assert.match(after, /^0$/m, "no patch module left loaded");
  });
});
