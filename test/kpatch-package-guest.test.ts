/**
 * The maintainer scripts of two versions of a patch package (kpatch package on the lab's
 * atomic-replace test modules, v9 as version 1, v10 as version 2), run in the lab guest in the
 * order dpkg runs them for install, upgrade and removal, with the real kpatch and the real
 * livepatch core. The busybox guest has no dpkg: the files are unpacked by cp, as dpkg would.
 * A Debian guest with dpkg and apt is issue 12's item 3.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { GuestCommandResult } from "../src/lab/guest.js";
import { replacePatchPackages } from "./helpers/fixture-modules.js";
import { lab, runKpatchSteps, testModules } from "./helpers/kpatch-fixtures.js";

describe("a patch package's maintainer scripts in the lab guest", () => {
  const work = mkdtempSync(join(tmpdir(), "kpatch-package-guest-"));
  let step: (name: string) => GuestCommandResult;
  after(() => rmSync(work, { recursive: true, force: true }));

  before(async () => {
    const modules = await testModules();
    const files: string[] = [];
    const debs = replacePatchPackages(modules, lab.kernelRelease, work, "Jane Admin <jane@example.org>");
    for (const v of ["1", "2"] as const) {
      const deb = debs[v];
      const x = join(work, `x${v}`);
      execFileSync("dpkg-deb", ["-R", deb, x]);
      for (const s of ["postinst", "prerm", "postrm"]) {
        copyFileSync(join(x, "DEBIAN", s), join(work, `${s}-${v}`));
        files.push(join(work, `${s}-${v}`));
      }
    }
    const dir = `/usr/lib/kpatch-ts/patches/${lab.kernelRelease}`;
    const ko9 = `${dir}/kpatch_replace_v9.ko`;
    const ko10 = `${dir}/kpatch_replace_v10.ko`;
    files.push(modules["kpatch-replace-v9"], modules["kpatch-replace-v10"]);
    const state = "cat /proc/cmdline; kpatch list --json";
    ({ step } = await runKpatchSteps(
      [
        { name: "unpack-1", command: `mkdir -p ${dir} && cp kpatch-replace-v9.ko ${ko9}` },
        { name: "postinst-1", command: "sh postinst-1 configure" },
        { name: "state-1", command: state },
        { name: "prerm-1-upgrade", command: "sh prerm-1 upgrade 2" },
        { name: "unpack-2", command: `cp kpatch-replace-v10.ko ${ko10}` },
        { name: "postrm-1-upgrade", command: `sh postrm-1 upgrade 2 && rm ${ko9}` },
        { name: "postinst-2", command: "sh postinst-2 configure 1" },
        { name: "state-2", command: state },
        { name: "prerm-2-remove", command: "sh prerm-2 remove" },
        { name: "postrm-2-remove", command: `rm ${ko10} && sh postrm-2 remove` },
        { name: "state-3", command: state },
      ],
      { files },
    ));
  });

  const out = (name: string) => {
    const r = step(name);
    assert.equal(r.exitCode, 0, `${name}: exit ${r.exitCode}:\n${r.output}`);
    return r.output;
  };
  const json = (name: string) => JSON.parse(out(name).slice(out(name).indexOf("{")));
  const names = (list: { name: string }[]) => list.map((p) => p.name);

  it("install: postinst installs v9 and loads it live (the kernel's cmdline says v9)", () => {
    out("unpack-1");
    out("postinst-1");
    assert.match(out("state-1"), /^kpatch-replace v9\n/);
    assert.deepEqual(names(json("state-1").loaded), ["kpatch_replace_v9"]);
    assert.deepEqual(names(json("state-1").installed), ["kpatch_replace_v9"]);
  });

  it("upgrade: v10 replaces v9 live, and v9 is unloaded and uninstalled", () => {
    out("prerm-1-upgrade");
    out("unpack-2");
    out("postrm-1-upgrade");
    out("postinst-2");
    assert.match(out("state-2"), /^kpatch-replace v10\n/);
    const s = json("state-2");
    assert.deepEqual(names(s.loaded), ["kpatch_replace_v10"]);
    assert.deepEqual(s.replaced, []);
    assert.deepEqual(names(s.installed), ["kpatch_replace_v10"]);
  });

  it("remove: prerm unloads v10 live and uninstalls it", () => {
    out("prerm-2-remove");
    out("postrm-2-remove");
    assert.doesNotMatch(out("state-3"), /kpatch-replace/);
    const s = json("state-3");
    assert.deepEqual(s.loaded, []);
    assert.deepEqual(s.installed, []);
  });
});
