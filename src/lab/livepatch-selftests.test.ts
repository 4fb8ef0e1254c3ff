import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { configSkipReason, readSelftests, SELFTESTS_DIR, scriptOutcome } from "./livepatch-selftests.js";

const tmp = mkdtempSync(join(tmpdir(), "kpatch-selftests-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A source tree with a 6.12-shaped selftests directory (the files' relevant parts). */
function tree(name: string, withModules = true): string {
  const src = join(tmp, name);
  const dir = join(src, SELFTESTS_DIR);
  mkdirSync(join(dir, "test_modules"), { recursive: true });
  writeFileSync(
    join(dir, "Makefile"),
    "TEST_GEN_FILES := test_klp-call_getpid\nTEST_GEN_MODS_DIR := test_modules\nTEST_PROGS_EXTENDED := functions.sh\nTEST_PROGS := \\\n\ttest-livepatch.sh \\\n\ttest-ftrace.sh\n\nTEST_FILES := settings\n",
  );
  writeFileSync(join(dir, "config"), "CONFIG_LIVEPATCH=y\nCONFIG_DYNAMIC_DEBUG=y\n");
  writeFileSync(
    join(dir, "functions.sh"),
    "function set_dynamic_debug() {\n        cat <<-EOF > /sys/kernel/debug/dynamic_debug/control\n\t\tfile kernel/livepatch/* +p\n\t\tfunc klp_try_switch_task -p\n\t\tEOF\n}\n",
  );
  if (withModules) {
    writeFileSync(
      join(dir, "test_modules", "Makefile"),
      "obj-m += test_klp_atomic_replace.o \\\n\ttest_klp_livepatch.o\n",
    );
  }
  return src;
}

test("readSelftests() reads the scripts, files, programs, modules, config and dynamic debug queries", () => {
  const suite = readSelftests(tree("full"));
  assert.ok(!("missing" in suite));
  assert.deepEqual(suite.scripts, ["test-livepatch.sh", "test-ftrace.sh"]);
  assert.deepEqual(suite.support, ["functions.sh", "settings"]);
  assert.deepEqual(suite.programs, ["test_klp-call_getpid"]);
  assert.deepEqual(suite.modules, ["test_klp_atomic_replace", "test_klp_livepatch"]);
  assert.deepEqual(
    [...suite.config],
    [
      ["CONFIG_LIVEPATCH", "y"],
      ["CONFIG_DYNAMIC_DEBUG", "y"],
    ],
  );
  assert.deepEqual(suite.dynamicDebug, ["file kernel/livepatch/* +p", "func klp_try_switch_task -p"]);
});

test("readSelftests() takes 6.1's modules from lib/livepatch, loaded with modprobe", () => {
  const src = tree("old", false);
  mkdirSync(join(src, "lib", "livepatch"), { recursive: true });
  writeFileSync(
    join(src, "lib", "livepatch", "Makefile"),
    "obj-$(CONFIG_TEST_LIVEPATCH) += test_klp_atomic_replace.o \\\n\t\t\t\ttest_klp_livepatch.o\n",
  );
  writeFileSync(join(src, SELFTESTS_DIR, "config"), "CONFIG_LIVEPATCH=y\nCONFIG_TEST_LIVEPATCH=m\n");
  const suite = readSelftests(src);
  assert.ok(!("missing" in suite));
  assert.equal(suite.load, "modprobe");
  assert.equal(suite.modulesSource, join(src, "lib", "livepatch"));
  assert.deepEqual(suite.modules, ["test_klp_atomic_replace", "test_klp_livepatch"]);
  assert.deepEqual(suite.makeArgs, ["CONFIG_TEST_LIVEPATCH=m"]);
  // built here out of tree, so the kernel need not have it
  assert.deepEqual([...suite.config.keys()], ["CONFIG_LIVEPATCH"]);
  const full = readSelftests(tree("new"));
  assert.ok(!("missing" in full) && full.load === "insmod" && full.makeArgs.length === 0);
});

test("readSelftests() says why a tree has none to run", () => {
  const none = readSelftests(tree("bare", false));
  assert.ok("missing" in none && /no test_modules\/ and .* no lib\/livepatch/.test(none.missing));
  const nothing = readSelftests(join(tmp, "nothing"));
  assert.ok("missing" in nothing && /does not exist/.test(nothing.missing));
});

test("configSkipReason() names each option the lab kernel lacks", () => {
  const suite = readSelftests(tree("cfg"));
  assert.ok(!("missing" in suite));
  const config = join(tmp, "config");
  const base = "CONFIG_LIVEPATCH=y\nCONFIG_FUNCTION_TRACER=y\nCONFIG_PROC_SYSCTL=y\nCONFIG_MODULE_UNLOAD=y\n";
  writeFileSync(config, `${base}CONFIG_DYNAMIC_DEBUG=y\n`);
  assert.equal(configSkipReason(suite, config), undefined);
  writeFileSync(config, `${base}# CONFIG_DYNAMIC_DEBUG is not set\n`);
  assert.match(configSkipReason(suite, config) ?? "", /lacks CONFIG_DYNAMIC_DEBUG=y/);
});

test("scriptOutcome() passes a script that exits 0 with every check ok, and times it", () => {
  const o = scriptOutcome(0, "TEST: a ... ok\nTEST: b ... ok\nkplab-selftest-uptime 10.50 12.75\n");
  assert.equal(o.verdict, "pass");
  assert.deepEqual(o.checks, ["TEST: a ... ok", "TEST: b ... ok"]);
  assert.equal(o.output, "TEST: a ... ok\nTEST: b ... ok\n");
  assert.equal(o.seconds, 2.25);
});

test("scriptOutcome() fails a non-zero exit, a run without checks and a check not ok", () => {
  assert.deepEqual(
    [
      scriptOutcome(1, "TEST: a ... not ok\n\nERROR: livepatch kselftest(s) failed\n"),
      scriptOutcome(0, "nothing\n"),
      scriptOutcome(0, "TEST: a ... ok\nTEST: b ... not ok\n"),
    ].map((o) => [o.verdict, o.reason]),
    [
      ["fail", "exit status 1"],
      ["fail", "it ran no check"],
      ["fail", "checks not ok: TEST: b ... not ok"],
    ],
  );
  assert.equal(scriptOutcome(0, "TEST: a ... ok\n").seconds, undefined);
});

test("scriptOutcome() skips on kselftest's exit 4 with the script's reason", () => {
  const o = scriptOutcome(4, "SKIP: failed to set kernel.ftrace_enabled = 1\n");
  assert.equal(o.verdict, "skip");
  assert.equal(o.reason, "the script skips itself: failed to set kernel.ftrace_enabled = 1");
  const inline = scriptOutcome(4, "TEST: basic ... SKIP: unable to load module test_klp_livepatch\n");
  assert.equal(inline.reason, "the script skips itself: unable to load module test_klp_livepatch");
  const root = scriptOutcome(4, "skip all tests: must be run as root\n");
  assert.equal(root.reason, "the script skips itself: skip all tests: must be run as root");
});
