/**
 * The maintainer scripts of a kernel's patch package (kpatch package on the atomic-replace test
 * modules built for that kernel: v9 as level 1, v10 as level 2), run in a lab guest in the order
 * dpkg runs them, with the real kpatch and the real livepatch core, on the lab kernel and on
 * Debian's stock kernels, 6.12 and 6.1 (each when set up; says why when not): install, upgrade, removal, and an
 * upgrade unpacked but never configured then removed (the older level must go too: nothing left
 * loaded or installed for boot that no package owns). The scripts tell their own module by the
 * build id /sys/module/<name>/notes shows, read with the guest's busybox. The busybox guest has
 * no dpkg: the files are unpacked by cp, as dpkg would. The Debian guests with dpkg and apt are
 * test/fleet-apt's.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type DistroLab, findDistroLab, sampleSkip } from "../src/lab/distro.js";
import { type GuestCommandResult, runGuest } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { KERNEL_SERIES, testSeries } from "../src/lab/paths.js";
import { findLab, type Lab } from "../src/lab/setup.js";
import { fixtureModules, replacePatchPackages } from "./helpers/fixture-modules.js";

const series = testSeries();
const lab = findLab(series);
/** The lab kernel of the test series, then Debian's stock kernel of each series (6.12 and 6.1). */
const KERNELS: [string, Lab | DistroLab | undefined, () => { key: string; kbuildDir: string }, string][] = [
  ["lab", lab, () => ({ key: lab!.key, kbuildDir: lab!.buildDir }), `kpatch-lab setup --kernel ${series}`],
  ...[series, ...KERNEL_SERIES.filter((s) => s !== series)].map((s) => {
    const distro = findDistroLab(s);
    return [
      `stock ${s}`,
      distro,
      () => ({ key: `distro-${distro!.key}`, kbuildDir: distro!.headersDir! }),
      `kpatch-lab setup --distro ${s}`,
    ] as [string, DistroLab | undefined, () => { key: string; kbuildDir: string }, string];
  }),
];

for (const [name, kernel, kbuild, setup] of KERNELS) {
  const skip = !kernel
    ? `the ${name} kernel is not set up (${setup})`
    : name !== "lab" && sampleSkip(kernel as DistroLab);
  describe(`a patch package's maintainer scripts in a guest of the ${name} kernel (${kernel?.kernelRelease ?? "not set up"})`, {
    skip,
  }, () => {
    const work = mkdtempSync(join(tmpdir(), "kpatch-package-guest-"));
    let step: (name: string) => GuestCommandResult;
    after(() => rmSync(work, { recursive: true, force: true }));

    before(async () => {
      const k = kernel!;
      const modules = await fixtureModules(kbuild());
      const files: string[] = [];
      const debs = replacePatchPackages(modules, k.kernelRelease, work, "Jane Admin <jane@example.org>");
      for (const v of ["1", "2"] as const) {
        const x = join(work, `x${v}`);
        execFileSync("dpkg-deb", ["-R", debs[v], x]);
        for (const s of ["postinst", "prerm", "postrm"]) {
          copyFileSync(join(x, "DEBIAN", s), join(work, `${s}-${v}`));
          files.push(join(work, `${s}-${v}`));
        }
      }
      const dir = `/usr/lib/kpatch-ts/patches/${k.kernelRelease}`;
      const ko9 = `${dir}/kpatch_replace_v9.ko`;
      const ko10 = `${dir}/kpatch_replace_v10.ko`;
      files.push(modules["kpatch-replace-v9"], modules["kpatch-replace-v10"]);
      const state = "cat /proc/cmdline; kpatch list --json";
      const steps = [
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
        // Level 1 again, then level 2 unpacked only (its postinst never runs), then removed.
        { name: "reinstall-1", command: `cp kpatch-replace-v9.ko ${ko9} && sh postinst-1 configure` },
        {
          name: "unpack-only-2",
          command: `sh prerm-1 upgrade 2 && cp kpatch-replace-v10.ko ${ko10} && sh postrm-1 upgrade 2 && rm ${ko9}`,
        },
        // dpkg runs no prerm for a version only unpacked: its files go, then postrm remove.
        { name: "remove-unconfigured-2", command: `rm ${ko10} && sh postrm-2 remove` },
        { name: "state-4", command: state },
      ];
      const g = await kpatchInGuest(k);
      const result = await runGuest({
        lab: k,
        shareHost: true,
        timeoutMs: 600_000,
        files: [g.file, ...files],
        commands: [`${g.setup} >/dev/null`, ...steps.map((s) => s.command)],
      });
      assert.equal(result.commands[0]!.exitCode, 0, `kpatch setup: ${result.commands[0]!.output}`);
      step = (n) => result.commands[steps.findIndex((s) => s.name === n) + 1]!;
    });

    const out = (n: string) => {
      const r = step(n);
      assert.equal(r.exitCode, 0, `${n}: exit ${r.exitCode}:\n${r.output}`);
      return r.output;
    };
    const json = (n: string) => JSON.parse(out(n).slice(out(n).indexOf("{")));
    const names = (list: { name: string }[]) => list.map((p) => p.name);

    it("install: postinst installs v9 and loads it live (the kernel's cmdline says v9)", () => {
      out("unpack-1");
      out("postinst-1");
      assert.match(out("state-1"), /^kpatch-replace v9\n/);
      assert.deepEqual(names(json("state-1").loaded), ["kpatch_replace_v9"]);
      assert.deepEqual(names(json("state-1").installed), ["kpatch_replace_v9"]);
    });

    it("upgrade: v10 replaces v9 live, and v9 (its build id seen loaded) is unloaded and uninstalled", () => {
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

    it("remove: prerm unloads v10 live (its own build id) and uninstalls it", () => {
      out("prerm-2-remove");
      out("postrm-2-remove");
      assert.doesNotMatch(out("state-3"), /kpatch-replace/);
      const s = json("state-3");
      assert.deepEqual(s.loaded, []);
      assert.deepEqual(s.installed, []);
    });

    it("an upgrade unpacked but never configured, then removed: the older level goes too", () => {
      out("reinstall-1");
      out("unpack-only-2");
      out("remove-unconfigured-2");
      assert.doesNotMatch(out("state-4"), /kpatch-replace/);
      const s = json("state-4");
      assert.deepEqual(s.loaded, []);
      assert.deepEqual(s.replaced, []);
      assert.deepEqual(s.installed, []);
    });
  });
}
