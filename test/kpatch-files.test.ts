/**
 * The kpatch command's files, checked on this machine (nothing is loaded here): the systemd
 * units with systemd-analyze verify, the init script with sh -n and a stub kpatch, and what
 * `kpatch info` reads from real livepatch modules built against the lab kernel.
 */
import assert from "node:assert/strict";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { readModuleFile } from "../src/kernel/modinfo.js";
import { findPatchMetadata } from "../src/kernel/patch-metadata.js";
import { exec } from "../src/util/exec.js";
import { sampleModule, testModules } from "./helpers/kpatch-fixtures.js";

const DATA = join(import.meta.dirname, "..", "..", "data", "kpatch");
const UNITS = ["kpatch.service", "kpatch-confirm.service", "kpatch-confirm.timer"];

test("systemd-analyze verify accepts the units, without a single warning", async (t) => {
  const which = await exec("sh", ["-c", "command -v systemd-analyze"]);
  assert.equal(which.code, 0, "systemd-analyze is not installed: scripts/test.sh installs systemd");
  // A root with the units, the system's own units they refer to, and an executable kpatch.
  const root = mkdtempSync(join(tmpdir(), "kpatch-systemd-"));
  mkdirSync(join(root, "usr", "sbin"), { recursive: true });
  mkdirSync(join(root, "etc", "systemd", "system"), { recursive: true });
  mkdirSync(join(root, "usr", "lib", "systemd"), { recursive: true });
  cpSync("/usr/lib/systemd/system", join(root, "usr", "lib", "systemd", "system"), { recursive: true });
  writeFileSync(join(root, "usr", "sbin", "kpatch"), "#!/bin/sh\n");
  chmodSync(join(root, "usr", "sbin", "kpatch"), 0o755);
  for (const u of UNITS) cpSync(join(DATA, u), join(root, "etc", "systemd", "system", u));
  const r = await exec("systemd-analyze", [
    "verify",
    `--root=${root}`,
    "--man=no",
    ...UNITS.map((u) => join(root, "etc", "systemd", "system", u)),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), "", "no warnings");
  const version = await exec("systemd-analyze", ["--version"]);
  t.diagnostic(`verified with ${version.stdout.split("\n")[0]}`);
});

test("kpatch.service: oneshot before the network, skipped with kpatch.enable=0, confirms at stop", () => {
  const unit = readFileSync(join(DATA, "kpatch.service"), "utf8");
  assert.match(unit, /^Type=oneshot$/m);
  assert.match(unit, /^RemainAfterExit=yes$/m);
  assert.match(unit, /^Before=.*\bnetwork-pre\.target\b/m);
  assert.match(unit, /^Wants=network-pre\.target$/m);
  assert.match(unit, /^ConditionKernelCommandLine=!kpatch\.enable=0$/m);
  assert.match(unit, /^ExecStart=\/usr\/sbin\/kpatch boot$/m);
  assert.match(unit, /^ExecStop=\/usr\/sbin\/kpatch boot --confirm$/m);
  // One patch failing to load must not fail the unit: its stop confirms the others.
  assert.match(unit, /^SuccessExitStatus=1 3$/m);
  assert.match(unit, /^WantedBy=multi-user\.target$/m);
});

test("the init script parses, and start/stop/status/reload run the right kpatch verbs", async () => {
  const script = join(DATA, "kpatch.init");
  for (const sh of ["sh", "busybox"]) {
    const r = await exec(sh, sh === "busybox" ? ["sh", "-n", script] : ["-n", script]);
    assert.equal(r.code, 0, `${sh}: ${r.stderr}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "kpatch-init-"));
  const stub = join(dir, "kpatch");
  writeFileSync(
    stub,
    `#!/bin/sh\necho "kpatch $*" >> ${dir}/calls\n[ "$1" = boot ] && [ -z "$2" ] && exit 3\nexit 0\n`,
  );
  chmodSync(stub, 0o755);
  // The script reads /etc/default/kpatch; run a copy that reads ours instead.
  const copy = join(dir, "kpatch.init");
  writeFileSync(copy, readFileSync(script, "utf8").replaceAll("/etc/default/kpatch", join(dir, "default")));
  writeFileSync(join(dir, "default"), `KPATCH=${stub}\nKPATCH_CONFIRM_AFTER=0\n`);
  const run = (arg: string) => exec("sh", [copy, arg]);
  assert.equal((await run("start")).code, 3, "start passes kpatch boot's status on");
  assert.equal((await run("stop")).code, 0);
  assert.equal((await run("status")).code, 0);
  assert.equal((await run("reload")).code, 0);
  assert.equal((await run("bogus")).code, 2);
  assert.equal(
    readFileSync(join(dir, "calls"), "utf8"),
    "kpatch boot\nkpatch boot --confirm\nkpatch list\nkpatch load --all\n",
  );
});

test("findPatchMetadata() reads the kernel's samples: functions, new functions, target modules, callbacks", () => {
  const sample = findPatchMetadata(readModuleFile(sampleModule("livepatch", "livepatch-sample")).elf);
  assert.deepEqual(sample, {
    objects: [
      {
        name: "vmlinux",
        functions: [{ name: "cmdline_proc_show", sympos: 0, newFunction: "livepatch_cmdline_proc_show" }],
        callbacks: {},
      },
    ],
    replace: false,
    states: [],
  });
  const fix1 = findPatchMetadata(readModuleFile(sampleModule("livepatch", "livepatch-shadow-fix1")).elf);
  assert.deepEqual(
    fix1?.objects.map((o) => [o.name, o.functions.map((f) => `${f.name}->${f.newFunction}`)]),
    [
      [
        "livepatch_shadow_mod",
        ["dummy_alloc->livepatch_fix1_dummy_alloc", "dummy_free->livepatch_fix1_dummy_free"],
      ],
    ],
  );
  const demo = findPatchMetadata(readModuleFile(sampleModule("livepatch", "livepatch-callbacks-demo")).elf);
  assert.deepEqual(
    demo?.objects.map((o) => [o.name, o.functions.length, Object.keys(o.callbacks)]),
    [
      ["vmlinux", 0, ["pre_patch", "post_patch", "pre_unpatch", "post_unpatch"]],
      ["livepatch_callbacks_mod", 0, ["pre_patch", "post_patch", "pre_unpatch", "post_unpatch"]],
      ["livepatch_callbacks_busymod", 1, ["pre_patch", "post_patch", "pre_unpatch", "post_unpatch"]],
    ],
  );
});

test("findPatchMetadata() reads sympos, states and atomic replace (kpatch-info-patch.ko)", async () => {
  const modules = await testModules();
  const info = findPatchMetadata(readModuleFile(modules["kpatch-info-patch"]).elf);
  assert.deepEqual(info, {
    objects: [
      {
        name: "vmlinux",
        functions: [
          { name: "cmdline_proc_show", sympos: 0, newFunction: "kpatch_info_cmdline_show" },
          { name: "version_proc_show", sympos: 1, newFunction: "kpatch_info_version_show" },
        ],
        callbacks: { pre_patch: "kpatch_info_pre_patch" },
      },
      {
        name: "kpatch_stall_target",
        functions: [{ name: "kpatch_stall_loop", sympos: 0, newFunction: "kpatch_info_stall_loop" }],
        callbacks: { post_unpatch: "kpatch_info_post_unpatch" },
      },
    ],
    replace: true,
    states: [{ id: 42, version: 3 }],
  });
  assert.equal(findPatchMetadata(readModuleFile(sampleModule("kobject", "kobject-example")).elf), undefined);
});
