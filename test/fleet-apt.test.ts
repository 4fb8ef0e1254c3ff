/**
 * Issue 12's fleet delivery, end to end in a Debian 12 guest with systemd and apt on Debian's
 * stock 6.12 kernel: an apt repository on this machine (apt-ftparchive, its Release signed with
 * gpg, served by python3 -m http.server) holds the kpatch-ts package (kpatch-deb) and two
 * versions of a patch package (kpatch package on the replace-v9 and replace-v10 test modules,
 * built against the kernel's headers package). In the guest, through apt only:
 *
 *   boot 1  apt-get install the patch (version 1) → /proc/cmdline patched live (v9)
 *   boot 2  reboot → still patched (kpatch.service loaded it); apt-get install → version 2
 *           replaces it live (v10, v9 gone); apt-get remove → rolled back live; reinstall
 *   boot 3  v10 loaded at boot, then a module panics the kernel (unconfirmed boot)
 *   boot 4  the crash-loop guard blocks it: not loaded, `kpatch list` says BLOCKED
 *
 * The lab kernel cannot boot systemd (tinyconfig has no cgroups, inotify, signalfd, timerfd,
 * fhandle, network devices or ext4): the stock kernel is the Debian guest's kernel.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildDebianRootfs, copyRootDisk } from "../src/lab/debian-rootfs.js";
import { type DistroLab, findDistroLab } from "../src/lab/distro.js";
import { type GuestCommandResult, runGuest } from "../src/lab/guest.js";
import { fixtureModules, replacePatchPackages } from "./fixture-modules.js";
import { type HttpServer, serveDirectory } from "./http-server.js";

const REPO = join(import.meta.dirname, "..", "..");
const KPATCH_DEB = join(REPO, "dist", "src", "cli", "kpatch-deb.js");
const MAINTAINER = "Fleet Admin <fleet@example.org>";

const distro: DistroLab | undefined = findDistroLab("6.12");
const missing = ["debootstrap", "apt-ftparchive", "gpg"].filter(
  (t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0,
);
const skip = !distro
  ? "the stock 6.12 kernel is not set up (kpatch-lab setup --distro 6.12)"
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

describe("fleet delivery through apt in a Debian 12 guest with systemd (stock 6.12 kernel)", { skip }, () => {
  const work = mkdtempSync(join(tmpdir(), "fleet-apt-"));
  const repo = join(work, "repo");
  let server: HttpServer;
  let disk: string;
  let pkg: string;
  let crashModule: string;
  const boots: Record<string, Boot> = {};
  let crash: unknown;
  const walls: string[] = [];

  after(() => {
    server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** One boot of the guest's disk with named steps, each a shell command. */
  async function boot(name: string, steps: { name: string; command: string }[]): Promise<Boot> {
    const result = await runGuest({
      lab: distro!,
      rootDisk: disk,
      network: true,
      timeoutMs: 600_000,
      files: [crashModule],
      commands: steps.map((s) => s.command),
    });
    walls.push(
      `${name} ${(result.wallMs / 1000).toFixed(1)} s (commands from ${result.guestReadyS} s uptime)`,
    );
    return {
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
    const kver = distro!.kernelRelease;
    pkg = `kpatch-patch-fix-${kver}`;
    const modules = await fixtureModules({ key: `distro-${distro!.key}`, kbuildDir: distro!.headersDir });
    crashModule = modules["kpatch-crash"];
    mkdirSync(repo);
    run("node", [KPATCH_DEB, "-o", repo, "--maintainer", MAINTAINER]);
    replacePatchPackages(modules, kver, repo, MAINTAINER);
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
    disk = await copyRootDisk(rootfs, join(work, "rootfs.ext4"));

    const apt = "apt-get -q -y -o Dpkg::Use-Pty=0";
    boots["install"] = await boot("install", [
      {
        name: "sources",
        command: `mkdir -p /etc/apt/keyrings && /usr/lib/apt/apt-helper download-file ${server.guestUrl}/fleet.gpg /etc/apt/keyrings/fleet.gpg && echo 'deb [signed-by=/etc/apt/keyrings/fleet.gpg] ${server.guestUrl}/ ./' > /etc/apt/sources.list.d/fleet.list && apt-get -q update`,
      },
      { name: "before", command: "cat /proc/cmdline" },
      { name: "install", command: `${apt} install ${pkg}=1` },
      { name: "patched", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
      { name: "list", command: "kpatch list" },
      { name: "enabled", command: "systemctl is-enabled kpatch.service kpatch-confirm.timer" },
      {
        name: "packages",
        command: `dpkg-query -W -f '\${Package} \${Version} \${Status}\\n' kpatch-ts nodejs ${pkg}`,
      },
    ]);
    boots["reboot"] = await boot("reboot", [
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
      { name: "upgrade", command: `${apt} install ${pkg}` },
      { name: "upgraded", command: "cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/*/" },
      { name: "version", command: `dpkg-query -W -f '\${Version}\\n' ${pkg}` },
      { name: "remove", command: `${apt} remove ${pkg}` },
      {
        name: "removed",
        command:
          "cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/*/ 2>/dev/null | grep -c .ko",
      },
      { name: "reinstall", command: `${apt} install ${pkg}` },
      { name: "reinstalled", command: "cat /proc/cmdline" },
    ]);
    try {
      await boot("crash", [
        { name: "at-boot", command: "cat /proc/cmdline" },
        { name: "crash", command: "insmod kpatch-crash.ko" },
      ]);
    } catch (e) {
      crash = e;
      walls.push("crash (a kernel panic, as meant)");
    }
    boots["after-crash"] = await boot("after-crash", [
      { name: "cmdline", command: "cat /proc/cmdline" },
      { name: "list", command: "kpatch list" },
      { name: "journal", command: "journalctl -b -u kpatch.service -o cat --no-pager" },
      { name: "active", command: "systemctl is-active kpatch.service" },
    ]);
  });

  const out = (b: string, s: string) => {
    const r = boots[b]!.step(s);
    return r.output;
  };
  const ok = (b: string, s: string) => {
    const r = boots[b]!.step(s);
    assert.equal(r.exitCode, 0, `${b}/${s} exited ${r.exitCode}:\n${r.output}`);
    return r.output;
  };

  it("apt-get install of the patch package (and kpatch-ts, nodejs) from the signed repository patches the running kernel live", (t) => {
    t.diagnostic(`guest boots: ${walls.join("; ")}`);
    ok("install", "sources");
    assert.match(out("install", "before"), /kplab\.root/);
    const install = ok("install", "install");
    assert.match(install, /Setting up kpatch-ts /);
    assert.match(ok("install", "patched"), /^kpatch-replace v9\nkpatch_replace_v9\n$/);
    assert.match(ok("install", "list"), /kpatch_replace_v9/);
    assert.equal(ok("install", "enabled"), "enabled\nenabled\n");
    const packages = ok("install", "packages");
    assert.match(packages, /^kpatch-ts \S+ install ok installed$/m);
    assert.match(packages, new RegExp(`^nodejs ${process.versions.node}-0kplab1 install ok installed$`, "m"));
    assert.match(packages, new RegExp(`^${pkg.replace(/[.+]/g, "\\$&")} 1 install ok installed$`, "m"));
    assert.ok(
      server.requests.some((r) => /GET \/(\.\/)?InRelease .* 200/.test(r)),
      "apt fetched the signed InRelease",
    );
  });

  it("after a reboot the patch is live again, loaded by kpatch.service under systemd; the confirm timer is active", () => {
    assert.equal(ok("reboot", "at-boot"), "kpatch-replace v9\nkpatch_replace_v9\n");
    const unit = ok("reboot", "unit");
    assert.match(unit, /ActiveState=active/);
    assert.match(unit, /Result=success/);
    assert.match(unit, /kpatch_replace_v9/);
    assert.equal(ok("reboot", "timer"), "active\n", "the confirm timer runs");
    assert.equal(ok("reboot", "confirm"), "Result=success\n", "kpatch-confirm.service confirms");
  });

  it("version 2 upgrades it in place: v10 live, v9 unloaded and uninstalled", () => {
    ok("reboot", "upgrade");
    assert.equal(ok("reboot", "version"), "2\n");
    const upgraded = ok("reboot", "upgraded");
    assert.match(upgraded, /^kpatch-replace v10\nkpatch_replace_v10\n/);
    assert.doesNotMatch(upgraded, /v9/);
  });

  it("apt-get remove rolls it back live and uninstalls it", () => {
    ok("reboot", "remove");
    const removed = out("reboot", "removed");
    assert.doesNotMatch(removed, /kpatch-replace|kpatch_replace/);
    assert.match(removed, /kplab\.root/);
    assert.match(removed, /^0$/m, "no module left under /var/lib/kpatch");
    ok("reboot", "reinstall");
    assert.equal(ok("reboot", "reinstalled"), "kpatch-replace v10\n");
  });

  it("crash-loop guard under systemd: a boot that crashed with the patch loaded blocks it at the next boot", () => {
    assert.ok(crash instanceof Error, `the crash boot must fail: ${crash}`);
    assert.match((crash as Error).message, /kpatch-ts test: simulated crash/);
    assert.match(out("after-crash", "cmdline"), /kplab\.root/, "not loaded at boot");
    assert.match(
      out("after-crash", "list"),
      /kpatch_replace_v10[^\n]*\n\s*BLOCKED at boot by the crash-loop guard/,
    );
    assert.match(out("after-crash", "journal"), /kpatch_replace_v10: blocked by the crash-loop guard/);
    assert.equal(out("after-crash", "active"), "active\n");
  });

  it("the repository holds what the fleet needs", () => {
    const debs = readdirSync(repo).filter((f) => f.endsWith(".deb"));
    assert.equal(debs.length, 3, debs.join(" "));
  });
});
