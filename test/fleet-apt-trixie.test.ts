/**
 * Issue 22's Debian 13 machine: apt delivery of a live patch to a Debian 13 (trixie) guest with
 * systemd on Debian 13's stock 6.12 kernel (kpatch-lab setup --distro 6.12 --suite trixie
 * --debian). A signed apt repository on this machine (test/helpers/apt-repository.ts) holds the
 * kpatch-ts package (kpatch-deb, which must install with Debian 13's own nodejs) and two
 * versions of the kernel's patch package (kpatch package on the replace-v9 and replace-v10 test
 * modules, built against the kernel's headers with its own gcc 14 in its trixie build root).
 * Through apt only:
 *
 *   boot 1  apt-get install of version 1 → /proc/cmdline patched live (v9)
 *   boot 2  reboot → still patched (kpatch.service loaded it under systemd); apt-get install →
 *           version 2 replaces it live (v10, v9 gone); apt-get remove → rolled back live
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildDebianRootfs, copyRootDisk } from "../src/lab/debian-rootfs.js";
import { type DistroLab, distroLabKbuild, findDistroLab } from "../src/lab/distro.js";
import { type GuestCommandResult, runGuest } from "../src/lab/guest.js";
import {
  missingRepositoryTools,
  type SignedAptRepository,
  serveSignedAptRepository,
} from "./helpers/apt-repository.js";
import { fixtureModules, replacePatchPackages } from "./helpers/fixture-modules.js";

const REPO = join(import.meta.dirname, "..", "..");
const KPATCH_DEB = join(REPO, "dist", "src", "cli", "kpatch-deb.js");
const MAINTAINER = "Fleet Admin <fleet@example.org>";
const APT = "apt-get -q -y -o Dpkg::Use-Pty=0";

const distro: DistroLab | undefined = findDistroLab("6.12", { suite: "trixie" });
const missing = missingRepositoryTools();
const skip = !distro
  ? "Debian 13's stock 6.12 kernel is not set up (kpatch-lab setup --distro 6.12 --suite trixie --debian)"
  : missing.length
    ? `${missing.join(", ")} not installed (apt-get install debootstrap apt-utils gnupg)`
    : false;

type Step = { name: string; command: string };

describe("apt delivery to a Debian 13 guest with systemd on Debian 13's stock 6.12 kernel", { skip }, () => {
  const work = mkdtempSync(join(tmpdir(), "fleet-apt-trixie-"));
  const repo = join(work, "repo");
  const kver = distro?.kernelRelease ?? "";
  const pkg = `kpatch-patch-${kver}`;
  let repository: SignedAptRepository | undefined;
  let nodeVersion = "";
  let v9Module = "";
  const boots: Record<string, { steps: Step[]; commands: GuestCommandResult[] }> = {};
  const walls: string[] = [];

  after(() => {
    repository?.server.close();
    rmSync(work, { recursive: true, force: true });
  });

  before(async () => {
    const d = distro!;
    const rootfs = await buildDebianRootfs(d);
    nodeVersion = rootfs.nodeVersion;
    mkdirSync(repo);
    const deb = spawnSync("node", [KPATCH_DEB, "-o", repo, "--maintainer", MAINTAINER], { encoding: "utf8" });
    assert.equal(deb.status, 0, `kpatch-deb: ${deb.stderr}`);
    const modules = await fixtureModules({
      key: `distro-${d.key}`,
      kbuildDir: d.headersDir!,
      ...distroLabKbuild(d),
    });
    v9Module = modules["kpatch-replace-v9"];
    replacePatchPackages(modules, kver, repo, MAINTAINER, d.sourceVersion);
    repository = await serveSignedAptRepository(repo, join(work, "gnupg"));
    const disk = await copyRootDisk(rootfs, join(work, "trixie.ext4"));

    const boot = async (name: string, steps: Step[]) => {
      const result = await runGuest({
        lab: d,
        rootDisk: disk,
        network: true,
        timeoutMs: 900_000,
        commands: steps.map((s) => s.command),
      });
      walls.push(
        `${name} ${(result.wallMs / 1000).toFixed(1)} s (commands from ${result.guestReadyS} s uptime)`,
      );
      boots[name] = { steps, commands: result.commands };
    };
    await boot("install", [
      { name: "release", command: '. /etc/os-release && echo "$VERSION_ID $VERSION_CODENAME" && uname -r' },
      { name: "running", command: "systemctl is-system-running --wait || systemctl --failed --no-legend" },
      { name: "sources", command: repository.guestSetup },
      { name: "before", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
      { name: "install", command: `${APT} install ${pkg}=1` },
      { name: "patched", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
      { name: "list", command: "kpatch list" },
      { name: "enabled", command: "systemctl is-enabled kpatch.service kpatch-confirm.timer" },
      {
        name: "packages",
        command: `dpkg-query -W -f '\${Package} \${Version} \${Status}\\n' kpatch-ts nodejs ${pkg}`,
      },
      { name: "node", command: "node -e 'console.log(process.version)'" },
    ]);
    await boot("reboot", [
      { name: "at-boot", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
      {
        name: "unit",
        command:
          "systemctl show -p ActiveState -p Result kpatch.service; journalctl -b -u kpatch.service -o cat --no-pager",
      },
      { name: "startup", command: "systemd-analyze blame --no-pager | head -4" },
      { name: "upgrade", command: `${APT} install ${pkg}` },
      {
        name: "upgraded",
        command: `cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/${kver}/`,
      },
      { name: "version", command: `dpkg-query -W -f '\${Version}\\n' ${pkg}` },
      { name: "remove", command: `${APT} remove ${pkg}` },
      {
        name: "removed",
        command: `cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/${kver}/ 2>/dev/null | grep -c .ko`,
      },
    ]);
  });

  /** A step's result: its output, checked to have exited 0 unless `anyStatus`. */
  const out = (boot: string, step: string, anyStatus = false): string => {
    const b = boots[boot];
    assert.ok(b, `no boot ${boot}`);
    const i = b.steps.findIndex((s) => s.name === step);
    const r = b.commands[i];
    assert.ok(r, `${boot} has no step ${step}`);
    if (!anyStatus) assert.equal(r.exitCode, 0, `${boot}/${step} exited ${r.exitCode}:\n${r.output}`);
    return r.output;
  };
  const re = (s: string) => s.replace(/[.+]/g, "\\$&");

  it("the patch package's module is built by the kernel's own compiler (Debian 13's gcc 14)", () => {
    const config = readFileSync(distro!.config, "utf8");
    const text = /^CONFIG_CC_VERSION_TEXT="(.*)"$/m.exec(config)?.[1];
    assert.ok(text, `no CONFIG_CC_VERSION_TEXT in ${distro!.config}`);
    const version = text.replace(/^\S+\s+/, "");
    const comment = spawnSync("readelf", ["-p", ".comment", v9Module], { encoding: "utf8" }).stdout;
    const compilers = new Set([...comment.matchAll(/GCC: (.*)$/gm)].map((m) => m[1]!.trim()));
    assert.deepEqual([...compilers], [version], `the kernel says ${text}`);
    assert.match(version, /^\(Debian 14\./);
  });

  it("Debian 13 is up under systemd on Debian 13's kernel, with Debian 13's own nodejs", (t) => {
    t.diagnostic(`guest boots: ${walls.join("; ")}`);
    assert.equal(out("install", "release"), `13 trixie\n${kver}\n`);
    assert.equal(out("install", "running"), "running\n", "no unit failed");
    assert.match(nodeVersion, /^20\.\d+\.\d+\+dfsg/, "trixie's nodejs package");
    assert.equal(out("install", "node"), `v${nodeVersion.split("+")[0]}\n`);
  });

  it("apt-get install of the patch package (and kpatch-ts with it) from the signed repository patches the running kernel live", () => {
    out("install", "sources");
    assert.match(out("install", "before", true), /kplab\.root/);
    assert.doesNotMatch(out("install", "before", true), /kpatch-replace/);
    assert.match(out("install", "install"), /Setting up kpatch-ts /);
    assert.equal(out("install", "patched"), "kpatch-replace v9\nkpatch_replace_v9\n");
    assert.match(out("install", "list"), /kpatch_replace_v9/);
    assert.equal(out("install", "enabled"), "enabled\nenabled\n");
    const packages = out("install", "packages");
    assert.match(packages, /^kpatch-ts \S+ install ok installed$/m);
    assert.match(packages, new RegExp(`^nodejs ${re(nodeVersion)} install ok installed$`, "m"));
    assert.match(packages, new RegExp(`^${re(pkg)} 1 install ok installed$`, "m"));
    assert.ok(
      repository!.server.requests.some((r) => /GET \/(\.\/)?InRelease .* 200/.test(r)),
      "apt fetched the signed InRelease",
    );
  });

  it("after a reboot kpatch.service loads it again under systemd", (t) => {
    assert.equal(out("reboot", "at-boot"), "kpatch-replace v9\nkpatch_replace_v9\n");
    const unit = out("reboot", "unit");
    assert.match(unit, /ActiveState=active/);
    assert.match(unit, /Result=success/);
    assert.match(unit, /kpatch_replace_v9/);
    t.diagnostic(
      `slowest units: ${out("reboot", "startup", true)
        .trim()
        .replace(/\s*\n\s*/g, "; ")}`,
    );
  });

  it("version 2 upgrades it live: v10 loaded, v9 unloaded and uninstalled", () => {
    out("reboot", "upgrade");
    assert.equal(out("reboot", "version"), "2\n");
    const upgraded = out("reboot", "upgraded");
    assert.match(upgraded, /^kpatch-replace v10\nkpatch_replace_v10\n/);
    assert.doesNotMatch(upgraded, /v9/);
  });

  it("apt-get remove rolls it back live and uninstalls it", () => {
    out("reboot", "remove");
    const removed = out("reboot", "removed", true);
    assert.doesNotMatch(removed, /kpatch-replace|kpatch_replace/);
    assert.match(removed, /kplab\.root/);
    assert.match(removed, /^0$/m, "no module left under /var/lib/kpatch for this kernel");
  });
});
