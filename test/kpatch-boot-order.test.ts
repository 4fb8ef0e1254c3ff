/**
 * Installed atomic-replace patches load at boot in version order: with fix-v9 and fix-v10
 * installed, v10 loads last and is the one active (in file-name order, v10 came first and v9
 * replaced it). Two boots of one disk through the init script, as in kpatch-boot.test.ts.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { GuestCommandResult } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { diskImage, lab, runKpatchSteps, testModules } from "./helpers/kpatch-fixtures.js";

const INIT_SCRIPT = readFileSync(
  join(import.meta.dirname, "..", "..", "data", "kpatch", "kpatch.init"),
  "utf8",
);
const BOOT_SCRIPT = `mkdir -p /var/lib/kpatch /etc/default /usr/sbin
mount -o bind /disk/var/lib/kpatch /var/lib/kpatch
cp /disk/bin/kpatch /usr/sbin/kpatch && chmod 755 /usr/sbin/kpatch
echo KPATCH_CONFIRM_AFTER=0 > /etc/default/kpatch
sh /disk/etc/init.d/kpatch start
`;

describe("atomic-replace patches at boot in the lab guest", () => {
  const steps: Record<string, (name: string) => GuestCommandResult> = {};
  let disk = "";

  after(() => {
    if (disk) rmSync(dirname(disk), { recursive: true, force: true });
  });

  before(async () => {
    const modules = await testModules();
    const k = await kpatchInGuest(lab);
    disk = await diskImage({
      "boot.d/10-kpatch": BOOT_SCRIPT,
      "bin/kpatch": k.wrapper,
      "etc/init.d/kpatch": INIT_SCRIPT,
    });
    const files = [modules["kpatch-replace-v10"], modules["kpatch-replace-v9"]];
    const boot = (s: { name: string; command: string }[]) =>
      runKpatchSteps(s, { disk, diskBoot: true, files });
    const shutdown = { name: "shutdown", command: "sh /disk/etc/init.d/kpatch stop" };
    steps["install"] = (
      await boot([
        {
          name: "install",
          command: "kpatch install kpatch-replace-v10.ko && kpatch install kpatch-replace-v9.ko",
        },
        { name: "list-json", command: "kpatch list --json" },
        shutdown,
      ])
    ).step;
    steps["boot"] = (
      await boot([
        { name: "boot-log", command: "cat /tmp/kplab-boot.log" },
        { name: "cmdline", command: "cat /proc/cmdline" },
        { name: "list", command: "kpatch list" },
        shutdown,
      ])
    ).step;
  });

  const out = (boot: string, name: string) => {
    const r = steps[boot]!(name);
    assert.equal(r.exitCode, 0, `${boot}/${name}: exit ${r.exitCode}:\n${r.output}`);
    return r.output;
  };

  it("lists them in version order, v9 before v10", () => {
    out("install", "install");
    const json = JSON.parse(out("install", "list-json"));
    assert.deepEqual(
      json.installed.map((p: { name: string }) => p.name),
      ["kpatch_replace_v9", "kpatch_replace_v10"],
    );
  });

  it("loads v9 then v10 at boot: v10 replaced v9 and is the one active", () => {
    assert.match(out("boot", "boot-log"), /loaded kpatch_replace_v9\nloaded kpatch_replace_v10\n/);
    assert.equal(out("boot", "cmdline").trim(), "kpatch-replace v10");
    assert.match(
      out("boot", "list"),
      /Loaded patch modules:\n {2}kpatch_replace_v10 \[enabled, atomic replace\]\n/,
    );
  });
});
