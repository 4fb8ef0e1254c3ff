/**
 * The lab kernel is built the way Debian builds its own: every code-generation option of
 * Debian's 6.12 config (IBT, call padding, the mitigations) holds in the lab's .config.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { parseConfig, readConfig } from "../src/kpatch-build/kernel-config.js";
import { requireLab } from "../src/lab/setup.js";

const DEBIAN_612 = "/usr/src/linux-config-6.12/config.amd64_none_amd64.xz";
/** Options that change generated code, by name pattern. */
const CODEGEN =
  /^CONFIG_(X86_KERNEL_IBT|CALL_PADDING|CALL_THUNKS|PREFIX_SYMBOLS|MITIGATION_\w+|STACKPROTECTOR\w*|INIT_STACK_ALL_ZERO|JUMP_LABEL|PARAVIRT|PREEMPT_DYNAMIC|DYNAMIC_FTRACE_WITH_(REGS|ARGS)|UNWINDER_ORC|LIVEPATCH|KALLSYMS_ALL)$/;
/** Debian options the lab leaves out on purpose, each with the reason. */
const EXCEPTIONS: Record<string, string> = {
  CONFIG_MITIGATION_VMSCAPE: "protects a KVM host; the lab kernel has no KVM",
};

test("the 6.12 lab kernel has every code-generation option of Debian's 6.12 kernel", () => {
  assert.ok(existsSync(DEBIAN_612), `${DEBIAN_612} is missing: kpatch-lab setup installs linux-config-6.12`);
  const debian = parseConfig(execFileSync("xzcat", [DEBIAN_612], { encoding: "utf8" }));
  const lab = readConfig(join(requireLab("6.12").buildDir, ".config"));
  const wanted = [...debian].filter(([k, v]) => CODEGEN.test(k) && v === "y" && !(k in EXCEPTIONS));
  assert.ok(wanted.length >= 20, `only ${wanted.length} code-generation options found in Debian's config`);
  const missing = wanted.filter(([k]) => lab.get(k) !== "y").map(([k]) => k);
  assert.deepEqual(missing, []);
  assert.equal(lab.get("CONFIG_X86_KERNEL_IBT"), "y");
});
