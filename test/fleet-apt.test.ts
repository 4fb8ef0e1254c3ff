/**
 * Issue 12's fleet delivery, end to end in two Debian 12 guests with systemd and apt, one on
 * Debian's stock 6.12 kernel and one on the lab kernel (the same root file system; the lab
 * kernel's image package installed as a machine running it has it): an apt repository on this
 * machine (apt-ftparchive, its Release signed with gpg, served by python3 -m http.server) holds
 * the kpatch-ts package (kpatch-deb) and, for each kernel, two versions of a patch package
 * (kpatch package on the replace-v9 and replace-v10 test modules, built against that kernel's
 * headers or build tree). Both guests boot at once, through apt only:
 *
 *   boot 1  (lab guest) apt-get install of the other kernel's patch does nothing live;
 *           apt-get install the patch for its kernel (version 1) → /proc/cmdline patched live (v9)
 *   boot 2  reboot → still patched (kpatch.service loaded it); apt-get install → version 2
 *           replaces it live (v10, v9 gone); apt-get remove → rolled back live; reinstall
 *   boot 3  v10 loaded at boot, then a module panics the kernel (unconfirmed boot)
 *   boot 4  the crash-loop guard blocks it: not loaded, `kpatch list` says BLOCKED
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildDebianRootfs, copyRootDisk, debianGuest } from "../src/lab/debian-rootfs.js";
import { type DistroLab, findDistroLab, sampleSkip } from "../src/lab/distro.js";
import { type GuestCommandResult, runGuest } from "../src/lab/guest.js";
import { labImagePackageVersion } from "../src/lab/lab-image-package.js";
import { testSeries } from "../src/lab/paths.js";
import { findLab, type Lab } from "../src/lab/setup.js";
import { fixtureModules, replacePatchPackages } from "./helpers/fixture-modules.js";
import { type HttpServer, serveDirectory } from "./helpers/http-server.js";

const REPO = join(import.meta.dirname, "..", "..");
const KPATCH_DEB = join(REPO, "dist", "src", "cli", "kpatch-deb.js");
const MAINTAINER = "Fleet Admin <fleet@example.org>";

const series = testSeries();
const distro: DistroLab | undefined = findDistroLab(series);
const lab: Lab | undefined = findLab(series);
const missing = ["debootstrap", "apt-ftparchive", "gpg"].filter(
  (t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0,
);
const skip = !distro
  ? `the stock ${series} kernel is not set up (kpatch-lab setup --distro ${series})`
  : sampleSkip(distro)
    ? sampleSkip(distro)
    : !lab
      ? `the ${series} lab kernel is not set up (kpatch-lab setup --kernel ${series})`
      : missing.length
        ? `${missing.join(", ")} not installed (apt-get install debootstrap apt-utils gnupg)`
        : false;

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

interface Boot {
  step: (name: string) => GuestCommandResult;
  wallMs: number;
}

type Step = { name: string; command: string };

/** One machine of the fleet: a kernel, its own copy of the Debian disk, its patch package. */
interface Machine {
  name: "stock" | "lab";
  kernel: Lab | DistroLab;
  kver: string;
  pkg: string;
  disk: string;
  files: string[];
  /** A module that panics the kernel (test/fixtures/modules/kpatch-crash), built for it. */
  crash: string;
  /** Steps of its first boot only (installing the lab kernel's image package). */
  prepare: Step[];
  boots: Record<string, Boot>;
}

describe(`fleet delivery through apt to two Debian 12 guests with systemd (stock ${series} and lab kernels)`, {
  skip,
}, () => {
  const work = mkdtempSync(join(tmpdir(), "fleet-apt-"));
  const repo = join(work, "repo");
  let server: HttpServer;
  /** Debian's own nodejs in the guests (the kpatch-ts package's dependency). */
  let nodeVersion: string;
  const machines: Record<"stock" | "lab", Machine> = {} as Record<"stock" | "lab", Machine>;
  const crash: Partial<Record<"stock" | "lab", unknown>> = {};
  const walls: string[] = [];

  after(() => {
    server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** One boot of a machine's disk with named steps, each a shell command. */
  async function boot(m: Machine, name: string, steps: Step[]): Promise<void> {
    const result = await runGuest({
      lab: m.kernel,
      rootDisk: m.disk,
      network: true,
      timeoutMs: 900_000,
      files: [...m.files, m.crash],
      commands: steps.map((s) => s.command),
    });
    walls.push(
      `${m.name}/${name} ${(result.wallMs / 1000).toFixed(1)} s (commands from ${result.guestReadyS} s uptime)`,
    );
    m.boots[name] = {
      wallMs: result.wallMs,
      step: (s) => {
        const i = steps.findIndex((x) => x.name === s);
        if (i < 0) throw new Error(`no step ${s}`);
        return result.commands[i]!;
      },
    };
  }

  before(async () => {
    const rootfs = await buildDebianRootfs(distro!);
    nodeVersion = rootfs.nodeVersion;
    mkdirSync(repo);
    run("node", [KPATCH_DEB, "-o", repo, "--maintainer", MAINTAINER]);
    // Each patch depends on exactly the build of the kernel's image package the machine runs.
    for (const [name, kernel, kbuildDir, key, imageVersion] of [
      ["stock", distro!, distro!.headersDir!, `distro-${distro!.key}`, distro!.sourceVersion],
      ["lab", lab!, lab!.buildDir, lab!.key, labImagePackageVersion(lab!)],
    ] as const) {
      const modules = await fixtureModules({ key, kbuildDir });
      replacePatchPackages(modules, kernel.kernelRelease, repo, MAINTAINER, imageVersion);
      const guest = await debianGuest(kernel);
      machines[name] = {
        name,
        kernel,
        kver: kernel.kernelRelease,
        pkg: `kpatch-patch-${kernel.kernelRelease}`,
        disk: await copyRootDisk(rootfs, join(work, `${name}.ext4`)),
        files: guest.files,
        crash: modules["kpatch-crash"],
        prepare: guest.prepare ? [{ name: "image", command: guest.prepare }] : [],
        boots: {},
      };
    }
    // The repository: Packages and a Release signed by the fleet's key (apt checks it).
    const gnupg = join(work, "gnupg");
    mkdirSync(gnupg, { mode: 0o700 });
    const gpg = ["--batch", "--homedir", gnupg, "--passphrase", "", "--pinentry-mode", "loopback"];
    run("gpg", [
      ...gpg,
      "--quick-gen-key",
      "kpatch-ts fleet test <fleet@example.org>",
      "ed25519",
      "sign",
      "never",
    ]);
    writeFileSync(join(repo, "Packages"), run("apt-ftparchive", ["packages", "."], repo));
    writeFileSync(join(repo, "Release"), run("apt-ftparchive", ["release", "."], repo));
    run("gpg", [...gpg, "--clearsign", "-o", join(repo, "InRelease"), join(repo, "Release")]);
    run("gpg", [...gpg, "--export", "-o", join(work, "fleet.gpg")]);
    run("cp", [join(work, "fleet.gpg"), join(repo, "fleet.gpg")]);
    server = await serveDirectory(repo);

    const apt = "apt-get -q -y -o Dpkg::Use-Pty=0";
    const { stock, lab: onLab } = machines;
    const installSteps = (m: Machine, other: Machine): Step[] => [
      ...m.prepare,
      {
        name: "sources",
        command: `mkdir -p /etc/apt/keyrings && /usr/lib/apt/apt-helper download-file ${server.guestUrl}/fleet.gpg /etc/apt/keyrings/fleet.gpg && echo 'deb [signed-by=/etc/apt/keyrings/fleet.gpg] ${server.guestUrl}/ ./' > /etc/apt/sources.list.d/fleet.list && apt-get -q update`,
      },
      { name: "before", command: "uname -r; cat /proc/cmdline" },
      // The other kernel's patch: its image package is installed (the disk's stock kernel) but
      // this machine does not run that kernel, so nothing happens live.
      ...(m.name === "lab"
        ? [
            { name: "other", command: `${apt} install ${other.pkg}=1` },
            { name: "other-live", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
          ]
        : []),
      { name: "install", command: `${apt} install ${m.pkg}=1` },
      { name: "patched", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
      { name: "list", command: "kpatch list" },
      { name: "enabled", command: "systemctl is-enabled kpatch.service kpatch-confirm.timer" },
      {
        name: "packages",
        command: `dpkg-query -W -f '\${Package} \${Version} \${Status}\\n' kpatch-ts nodejs ${m.pkg}`,
      },
    ];
    const rebootSteps = (m: Machine): Step[] => [
      { name: "at-boot", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
      {
        name: "unit",
        command:
          "systemctl show -p ActiveState -p Result kpatch.service; journalctl -b -u kpatch.service -o cat --no-pager",
      },
      { name: "timer", command: "systemctl is-active kpatch-confirm.timer" },
      {
        name: "confirm",
        command: "systemctl start kpatch-confirm.service && systemctl show -p Result kpatch-confirm.service",
      },
      { name: "upgrade", command: `${apt} install ${m.pkg}` },
      {
        name: "upgraded",
        command: `cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/${m.kver}/`,
      },
      { name: "version", command: `dpkg-query -W -f '\${Version}\\n' ${m.pkg}` },
      { name: "remove", command: `${apt} remove ${m.pkg}` },
      {
        name: "removed",
        command: `cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/${m.kver}/ 2>/dev/null | grep -c .ko`,
      },
      { name: "reinstall", command: `${apt} install ${m.pkg}` },
      { name: "reinstalled", command: "cat /proc/cmdline" },
    ];
    // The fleet: both machines at once from the one repository.
    await Promise.all([
      boot(stock, "install", installSteps(stock, onLab)),
      boot(onLab, "install", installSteps(onLab, stock)),
    ]);
    await Promise.all([boot(stock, "reboot", rebootSteps(stock)), boot(onLab, "reboot", rebootSteps(onLab))]);
    // Both crash with the patch loaded at boot (unconfirmed), then boot again.
    const crashed = async (m: Machine) => {
      try {
        await boot(m, "crash", [
          { name: "at-boot", command: "cat /proc/cmdline" },
          { name: "crash", command: "insmod kpatch-crash.ko" },
        ]);
      } catch (e) {
        crash[m.name] = e;
        walls.push(`${m.name}/crash (a kernel panic, as meant)`);
      }
      await boot(m, "after-crash", [
        { name: "cmdline", command: "cat /proc/cmdline" },
        { name: "list", command: "kpatch list" },
        { name: "journal", command: "journalctl -b -u kpatch.service -o cat --no-pager" },
        { name: "active", command: "systemctl is-active kpatch.service" },
      ]);
    };
    await Promise.all([crashed(stock), crashed(onLab)]);
  });

  const step = (m: string, b: string, s: string) => {
    const boot = machines[m as "stock" | "lab"].boots[b];
    assert.ok(boot, `${m} has no boot ${b}`);
    return boot.step(s);
  };
  const out = (m: string, b: string, s: string) => step(m, b, s).output;
  const ok = (m: string, b: string, s: string) => {
    const r = step(m, b, s);
    assert.equal(r.exitCode, 0, `${m}/${b}/${s} exited ${r.exitCode}:\n${r.output}`);
    return r.output;
  };
  const re = (s: string) => s.replace(/[.+]/g, "\\$&");

  for (const name of ["stock", "lab"] as const) {
    it(`${name} kernel: apt-get install of the patch package (and kpatch-ts, nodejs) from the signed repository patches the running kernel live`, (t) => {
      if (name === "stock") t.diagnostic(`guest boots: ${walls.join("; ")}`);
      const m = machines[name];
      if (m.prepare.length) ok(name, "install", "image");
      ok(name, "install", "sources");
      assert.match(out(name, "install", "before"), new RegExp(`^${re(m.kver)}\\n.*kplab\\.root`));
      const install = ok(name, "install", "install");
      if (name === "stock") assert.match(install, /Setting up kpatch-ts /);
      assert.match(ok(name, "install", "patched"), /^kpatch-replace v9\nkpatch_replace_v9\n$/);
      assert.match(ok(name, "install", "list"), /kpatch_replace_v9/);
      assert.equal(ok(name, "install", "enabled"), "enabled\nenabled\n");
      const packages = ok(name, "install", "packages");
      assert.match(packages, /^kpatch-ts \S+ install ok installed$/m);
      assert.match(packages, new RegExp(`^nodejs ${re(nodeVersion)} install ok installed$`, "m"));
      assert.match(packages, new RegExp(`^${re(m.pkg)} 1 install ok installed$`, "m"));
      assert.ok(
        server.requests.some((r) => /GET \/(\.\/)?InRelease .* 200/.test(r)),
        "apt fetched the signed InRelease",
      );
    });
  }

  it("lab kernel: the other kernel's patch package installs (kpatch-ts with it) but does nothing live on a machine not running that kernel", () => {
    const install = ok("lab", "install", "other");
    assert.match(install, /Setting up kpatch-ts /);
    assert.match(install, new RegExp(`Setting up ${re(machines.stock.pkg)} `));
    const live = ok("lab", "install", "other-live");
    assert.doesNotMatch(live, /kpatch-replace|kpatch_replace/, "nothing patched live");
    assert.match(live, /kplab\.root/);
    const list = ok("lab", "install", "list");
    assert.match(list, new RegExp(re(machines.stock.kver)), "kpatch list shows it installed for its kernel");
  });

  for (const name of ["stock", "lab"] as const) {
    it(`${name} kernel: after a reboot the patch is live again, loaded by kpatch.service under systemd; the confirm timer is active`, () => {
      assert.equal(ok(name, "reboot", "at-boot"), "kpatch-replace v9\nkpatch_replace_v9\n");
      const unit = ok(name, "reboot", "unit");
      assert.match(unit, /ActiveState=active/);
      assert.match(unit, /Result=success/);
      assert.match(unit, /kpatch_replace_v9/);
      assert.equal(ok(name, "reboot", "timer"), "active\n", "the confirm timer runs");
      assert.equal(ok(name, "reboot", "confirm"), "Result=success\n", "kpatch-confirm.service confirms");
    });

    it(`${name} kernel: version 2 upgrades it in place: v10 live, v9 unloaded and uninstalled`, () => {
      ok(name, "reboot", "upgrade");
      assert.equal(ok(name, "reboot", "version"), "2\n");
      const upgraded = ok(name, "reboot", "upgraded");
      assert.match(upgraded, /^kpatch-replace v10\nkpatch_replace_v10\n/);
      assert.doesNotMatch(upgraded, /v9/);
    });

    it(`${name} kernel: apt-get remove rolls it back live and uninstalls it`, () => {
      ok(name, "reboot", "remove");
      const removed = out(name, "reboot", "removed");
      assert.doesNotMatch(removed, /kpatch-replace|kpatch_replace/);
      assert.match(removed, /kplab\.root/);
      assert.match(removed, /^0$/m, "no module left under /var/lib/kpatch for this kernel");
      ok(name, "reboot", "reinstall");
      assert.equal(ok(name, "reboot", "reinstalled"), "kpatch-replace v10\n");
    });
  }

  for (const name of ["stock", "lab"] as const) {
    it(`${name} kernel: crash-loop guard under systemd: a boot that crashed with the patch loaded blocks it at the next boot`, () => {
      const e = crash[name];
      assert.ok(e instanceof Error, `the crash boot must fail: ${e}`);
      assert.match(e.message, /kpatch-ts test: simulated crash/);
      assert.match(out(name, "after-crash", "cmdline"), /kplab\.root/, "not loaded at boot");
      assert.doesNotMatch(out(name, "after-crash", "cmdline"), /kpatch-replace/);
      assert.match(
        out(name, "after-crash", "list"),
        /kpatch_replace_v10[^\n]*\n\s*BLOCKED at boot by the crash-loop guard/,
      );
      assert.match(
        out(name, "after-crash", "journal"),
        /kpatch_replace_v10: blocked by the crash-loop guard/,
      );
      assert.equal(out(name, "after-crash", "active"), "active\n");
    });
  }

  it("the repository holds what the fleet needs: kpatch-ts and two versions of the patch for each kernel, each depending on that kernel's image build", () => {
    const debs = readdirSync(repo).filter((f) => f.endsWith(".deb"));
    assert.equal(debs.length, 5, debs.join(" "));
    const packages = readFileSync(join(repo, "Packages"), "utf8");
    const v = re(distro!.sourceVersion);
    const k = re(distro!.kernelRelease);
    assert.match(
      packages,
      new RegExp(
        `^Depends: linux-image-${k} \\(= ${v}\\) \\| linux-image-${k}-unsigned \\(= ${v}\\), kpatch-ts$`,
        "m",
      ),
    );
  });
});
