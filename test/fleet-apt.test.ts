/**
 * Issue 12's and 20's fleet delivery, end to end in three Debian 12 guests with systemd and apt:
 * Debian's stock 6.12 kernel, the lab kernel, and Debian's stock 6.1 (the same root file system,
 * each its own copy; the lab and 6.1 machines' with their kernel's image package added, as a
 * machine running that kernel has it: src/lab/debian-guest.ts, cached). A signed apt repository on this machine
 * (test/helpers/apt-repository.ts, as fleet-apt-trixie's) holds the
 * kpatch-ts package (kpatch-deb) and, for each kernel, two levels of its patch package (kpatch
 * package on the replace-v9 and replace-v10 test modules, built against that kernel's headers or
 * build tree). The machines boot at once, each its own chain, through apt only:
 *
 *   boot 1  (lab, 6.1) apt-get install of the stock 6.12 kernel's patch does nothing live;
 *           apt-get install the patch for its kernel (level 1) → /proc/cmdline patched live (v9)
 *   boot 2  reboot → still patched (kpatch.service); dpkg's state machine through apt and dpkg:
 *           upgrade (v10 replaces v9 live), remove, reinstall, downgrade, an upgrade only
 *           unpacked then removed, purge, level 2 again; after each, what is loaded and
 *           installed for boot equals what dpkg says is configured
 *   (6.1)   the same disk booted into its other kernel, stock 6.12: that kernel's patch is
 *           loaded at boot, the 6.1 one is not; two kernels, each with its patch installed
 *   boot 3  v10 loaded at boot, then a module panics the kernel (unconfirmed boot)
 *   boot 4  the crash-loop guard blocks it: not loaded, `kpatch list` says BLOCKED; (6.1) apt-get
 *           purge of the old 6.12 image removes its patch package, the running kernel's stays
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { debianGuest } from "../src/lab/debian-guest.js";
import { buildDebianRootfs, copyRootDisk } from "../src/lab/debian-rootfs.js";
import { type DistroLab, findDistroLab, sampleSkip } from "../src/lab/distro.js";
import { type GuestCommandResult, runGuest } from "../src/lab/guest.js";
import { labImagePackageVersion } from "../src/lab/lab-image-package.js";
import { KERNEL_SERIES, testSeries } from "../src/lab/paths.js";
import { findLab, type Lab } from "../src/lab/setup.js";
import {
  missingRepositoryTools,
  type SignedAptRepository,
  serveSignedAptRepository,
} from "./helpers/apt-repository.js";
import { fixtureModules, replacePatchPackages } from "./helpers/fixture-modules.js";
import {
  afterCrashSteps,
  assertConsistent,
  imagesStep,
  installSteps,
  readState,
  rebootSteps,
  removeImageSteps,
  type Step,
  stateStep,
} from "./helpers/fleet-steps.js";

const REPO = join(import.meta.dirname, "..", "..");
const KPATCH_DEB = join(REPO, "dist", "src", "cli", "kpatch-deb.js");
const MAINTAINER = "Fleet Admin <fleet@example.org>";

const series = testSeries();
const otherSeries = KERNEL_SERIES.find((s) => s !== series)!;
const distro: DistroLab | undefined = findDistroLab(series);
const other: DistroLab | undefined = findDistroLab(otherSeries);
const lab: Lab | undefined = findLab(series);
const missing = missingRepositoryTools();
const skip = !distro
  ? `the stock ${series} kernel is not set up (kpatch-lab setup --distro ${series})`
  : sampleSkip(distro)
    ? sampleSkip(distro)
    : !lab
      ? `the ${series} lab kernel is not set up (kpatch-lab setup --kernel ${series})`
      : missing.length
        ? `${missing.join(", ")} not installed (apt-get install debootstrap apt-utils gnupg)`
        : false;
/** The third machine, Debian's stock kernel of the other series (6.1); its cases say why when it is not set up. */
const OTHER = `stock-${otherSeries}`;
const skipOther = other
  ? false
  : `the stock ${otherSeries} kernel is not set up (kpatch-lab setup --distro ${otherSeries})`;

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

interface Boot {
  step: (name: string) => GuestCommandResult;
  wallMs: number;
}

/** One machine of the fleet: a kernel, its own copy of the Debian disk, its patch package. */
interface Machine {
  name: string;
  kernel: Lab | DistroLab;
  kver: string;
  pkg: string;
  disk: string;
  /** Test modules built for it: one that panics the kernel (kpatch-crash), kpatch-stall-target and -patch. */
  modules: string[];
  boots: Record<string, Boot>;
}

describe(`fleet delivery through apt to three Debian 12 guests with systemd (stock ${series}, lab ${series} and stock ${otherSeries} kernels)`, {
  skip,
}, () => {
  const work = mkdtempSync(join(tmpdir(), "fleet-apt-"));
  const repo = join(work, "repo");
  let repository: SignedAptRepository;
  /** Debian's own nodejs in the guests (the kpatch-ts package's dependency). */
  let nodeVersion: string;
  const machines: Record<string, Machine> = {};
  const crash: Record<string, unknown> = {};
  const walls: string[] = [];
  let started = 0;
  let fleetMs = 0;

  after(() => {
    repository?.server.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** A progress line in the test's output as it happens (`# boot reboot lab: 312 s`, TAP comment). */
  const note = (line: string) => {
    walls.push(line);
    process.stdout.write(`${line}\n`);
  };

  /** One boot of a machine's disk with named steps, each a shell command (on its kernel, or `kernel`). */
  async function boot(m: Machine, name: string, steps: Step[], kernel = m.kernel): Promise<void> {
    const result = await runGuest({
      lab: kernel,
      rootDisk: m.disk,
      network: true,
      // Generous: the state-machine boot runs ~20 dpkg operations, each running node under TCG.
      timeoutMs: 2_700_000,
      files: m.modules,
      commands: steps.map((s) => s.command),
    });
    note(
      `boot ${name} ${m.name}: ${(result.wallMs / 1000).toFixed(1)} s (commands from ${result.guestReadyS} s uptime; ${((Date.now() - started) / 1000).toFixed(0)} s into the fleet)`,
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
    started = Date.now();
    const rootfs = await buildDebianRootfs(distro!);
    nodeVersion = rootfs.nodeVersion;
    mkdirSync(repo);
    run("node", [KPATCH_DEB, "-o", repo, "--maintainer", MAINTAINER]);
    // Each patch depends on exactly the build of the kernel's image package the machine runs.
    const kernels: [string, Lab | DistroLab, string, string, string][] = [
      ["stock", distro!, distro!.headersDir!, `distro-${distro!.key}`, distro!.sourceVersion],
      ["lab", lab!, lab!.buildDir, lab!.key, labImagePackageVersion(lab!)],
    ];
    if (other) kernels.push([OTHER, other, other.headersDir!, `distro-${other.key}`, other.sourceVersion]);
    for (const [name, kernel, kbuildDir, key, imageVersion] of kernels) {
      const modules = await fixtureModules({ key, kbuildDir });
      replacePatchPackages(modules, kernel.kernelRelease, repo, MAINTAINER, imageVersion);
      const made = Date.now();
      const guest = await debianGuest(kernel);
      note(`disk ${name}: ${guest.rootfs.dir} in ${((Date.now() - made) / 1000).toFixed(1)} s`);
      machines[name] = {
        name,
        kernel,
        kver: kernel.kernelRelease,
        pkg: `kpatch-patch-${kernel.kernelRelease}`,
        disk: await copyRootDisk(guest.rootfs, join(work, `${name}.ext4`)),
        modules: [modules["kpatch-crash"], modules["kpatch-stall-target"], modules["kpatch-stall-patch"]],
        boots: {},
      };
    }
    // The repository: Packages and a Release signed by the fleet's key (apt checks it).
    repository = await serveSignedAptRepository(repo, join(work, "gnupg"));

    const stock = machines["stock"]!;
    // Both crash with the patch loaded at boot (unconfirmed), then boot again.
    const crashed = async (m: Machine, more: Step[] = []) => {
      try {
        await boot(m, "crash", [
          { name: "at-boot", command: "cat /proc/cmdline" },
          { name: "crash", command: "insmod kpatch-crash.ko" },
        ]);
      } catch (e) {
        crash[m.name] = e;
        note(
          `boot crash ${m.name}: a kernel panic, as meant (${((Date.now() - started) / 1000).toFixed(0)} s into the fleet)`,
        );
      }
      await boot(m, "after-crash", [...afterCrashSteps(), ...more]);
    };
    const chain = async (m: Machine) => {
      const others = m.name === "stock" ? undefined : stock;
      await boot(m, "install", installSteps(m, repository.guestSetup, others));
      await boot(m, "reboot", rebootSteps(m));
      if (m.name !== OTHER) return crashed(m);
      // Its other kernel, stock 6.12 (whose patch boot 1 installed), then back to its own.
      await boot(
        m,
        "other-kernel",
        [
          stateStep("at-boot", [m, stock]),
          { name: "list", command: "kpatch list" },
          {
            name: "confirm",
            command:
              "systemctl start kpatch-confirm.service && systemctl show -p Result kpatch-confirm.service",
          },
          imagesStep(),
        ],
        distro!,
      );
      return crashed(m, removeImageSteps(distro!.image, [m, stock]));
    };
    // The fleet: every machine at once from the one repository.
    await Promise.all(Object.values(machines).map(chain));
    fleetMs = Date.now() - started;
  });

  const step = (m: string, b: string, s: string) => {
    const boot = machines[m]?.boots[b];
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
  const NAMES = ["stock", "lab", OTHER] as const;
  const skipOf = (name: string) => (name === OTHER ? skipOther : false);

  for (const name of NAMES) {
    it(`${name} kernel: apt-get install of the patch package (and kpatch-ts, nodejs) from the signed repository patches the running kernel live`, {
      skip: skipOf(name),
    }, (t) => {
      if (name === "stock")
        t.diagnostic(`guest boots: ${walls.join("; ")}; the fleet ${(fleetMs / 1000).toFixed(0)} s`);
      const m = machines[name]!;
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
        repository.server.requests.some((r) => /GET \/(\.\/)?InRelease .* 200/.test(r)),
        "apt fetched the signed InRelease",
      );
    });
  }

  for (const name of ["lab", OTHER]) {
    it(`${name} kernel: the stock ${series} kernel's patch package installs (kpatch-ts with it) but does nothing live on a machine not running that kernel`, {
      skip: skipOf(name),
    }, () => {
      const stock = machines["stock"]!;
      const install = ok(name, "install", "other");
      assert.match(install, /Setting up kpatch-ts /);
      assert.match(install, new RegExp(`Setting up ${re(stock.pkg)} `));
      const live = ok(name, "install", "other-live");
      assert.doesNotMatch(live, /kpatch-replace|kpatch_replace/, "nothing patched live");
      assert.match(live, /kplab\.root/);
      const list = ok(name, "install", "list");
      assert.match(list, new RegExp(re(stock.kver)), "kpatch list shows it installed for its kernel");
    });
  }

  for (const name of NAMES) {
    const opts = { skip: skipOf(name) };
    it(
      `${name} kernel: after a reboot the patch is live again, loaded by kpatch.service under systemd; the confirm timer is active`,
      opts,
      () => {
        assert.equal(ok(name, "reboot", "at-boot"), "kpatch-replace v9\nkpatch_replace_v9\n");
        const unit = ok(name, "reboot", "unit");
        assert.match(unit, /ActiveState=active/);
        assert.match(unit, /Result=success/);
        assert.match(unit, /kpatch_replace_v9/);
        assert.equal(ok(name, "reboot", "timer"), "active\n", "the confirm timer runs");
        assert.equal(ok(name, "reboot", "confirm"), "Result=success\n", "kpatch-confirm.service confirms");
      },
    );

    it(`${name} kernel: version 2 upgrades it in place: v10 live, v9 unloaded and uninstalled`, opts, () => {
      ok(name, "reboot", "upgrade");
      assert.equal(ok(name, "reboot", "version"), "2\n");
      const upgraded = ok(name, "reboot", "upgraded");
      assert.match(upgraded, /^kpatch-replace v10\nkpatch_replace_v10\n/);
      assert.doesNotMatch(upgraded, /v9/);
      assertConsistent(ok(name, "reboot", "upgraded-state"), machines[name]!, "2");
    });

    it(`${name} kernel: apt-get remove rolls it back live and uninstalls it`, opts, () => {
      ok(name, "reboot", "remove");
      const removed = out(name, "reboot", "removed");
      assert.doesNotMatch(removed, /kpatch-replace|kpatch_replace/);
      assert.match(removed, /kplab\.root/);
      assert.match(removed, /^0$/m, "no module left under /var/lib/kpatch for this kernel");
      assertConsistent(ok(name, "reboot", "removed-state"), machines[name]!, undefined);
      ok(name, "reboot", "reinstall");
      assert.equal(ok(name, "reboot", "reinstalled"), "kpatch-replace v10\n");
    });

    it(`${name} kernel: a downgrade to level 1 puts v9 back live and for boot, v10 gone`, opts, () => {
      assert.match(ok(name, "reboot", "downgrade"), /Setting up kpatch-patch-\S+ \(1\)/);
      assertConsistent(ok(name, "reboot", "downgraded"), machines[name]!, "1");
    });

    it(
      `${name} kernel: level 2 unpacked only (dpkg --unpack), then dpkg -r: level 1 goes too, nothing left loaded or installed for boot`,
      opts,
      () => {
        assert.match(ok(name, "reboot", "unpack-only"), /^2 install ok unpacked$/m);
        ok(name, "reboot", "remove-unpacked");
        assertConsistent(ok(name, "reboot", "unpacked-removed"), machines[name]!, undefined);
      },
    );

    it(
      `${name} kernel: purge after a fresh install of level 2 leaves nothing loaded, nothing for boot, no package`,
      opts,
      () => {
        ok(name, "reboot", "install-2");
        assertConsistent(ok(name, "reboot", "installed-2"), machines[name]!, "2");
        ok(name, "reboot", "purge");
        const purged = ok(name, "reboot", "purged");
        assertConsistent(purged, machines[name]!, undefined);
        assert.match(
          purged,
          /^dpkg \S+:[ \t]*(\S+ ok not-installed)?[ \t]*$/m,
          `dpkg knows it only as not installed (or not at all) after purge:\n${purged}`,
        );
      },
    );
    it(
      `${name} kernel: a fresh install whose postinst fails (kpatch load refused: another patch in transition) is half-configured with nothing loaded or installed for boot; dpkg --configure then loads it`,
      opts,
      () => {
        const m = machines[name]!;
        assert.equal(ok(name, "reboot", "stall"), "1\n", "kpatch-stall-patch is in transition");
        const failed = step(name, "reboot", "failed-install");
        assert.notEqual(failed.exitCode, 0, `apt-get install must fail:\n${failed.output}`);
        assert.match(failed.output, /kpatch_stall_patch is in transition/);
        ok(name, "reboot", "unstall");
        const s = readState(ok(name, "reboot", "failed"), m);
        assert.equal(s.dpkg, "2 install ok half-configured");
        assert.deepEqual(s.boot, [], "installed for boot by a postinst that failed");
        assert.deepEqual(s.loaded, []);
        ok(name, "reboot", "configure");
        assertConsistent(ok(name, "reboot", "configured"), m, "2");
      },
    );
  }

  it(`${OTHER} kernel: two kernels installed; booted into the other (stock ${series}), that kernel's patch loads at boot and the ${otherSeries} one stays installed for its own kernel only`, {
    skip: skipOther,
  }, () => {
    const m = machines[OTHER]!;
    const stock = machines["stock"]!;
    const state = ok(OTHER, "other-kernel", "at-boot");
    assert.match(state, new RegExp(`^running ${re(stock.kver)}$`, "m"));
    // The stock kernel's level 1 (installed in boot 1) live; the 6.1 level 2 for its kernel's boot only.
    assertConsistent(state, stock, "1");
    assertConsistent(state, m, "2", false);
    assert.match(ok(OTHER, "other-kernel", "list"), /kpatch_replace_v9/);
    assert.equal(ok(OTHER, "other-kernel", "confirm"), "Result=success\n");
    const images = ok(OTHER, "other-kernel", "images");
    for (const k of [m.kernel as DistroLab, stock.kernel as DistroLab])
      assert.match(images, new RegExp(`^${re(k.image)} install ok installed$`, "m"));
  });

  for (const name of NAMES) {
    it(`${name} kernel: crash-loop guard under systemd: a boot that crashed with the patch loaded blocks it at the next boot`, {
      skip: skipOf(name),
    }, () => {
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

  it(`${OTHER} kernel: apt-get purge of the old stock ${series} image removes its patch package with it; the running kernel's patch stays installed`, {
    skip: skipOther,
  }, () => {
    const m = machines[OTHER]!;
    const stock = machines["stock"]!;
    const removal = ok(OTHER, "after-crash", "remove-image");
    assert.match(removal, new RegExp(`Removing ${re(stock.pkg)} `));
    const state = ok(OTHER, "after-crash", "image-removed");
    assertConsistent(state, stock, undefined, false);
    // Level 2 is installed for boot still (blocked by the guard, so not loaded).
    assertConsistent(state, m, "2", false);
    assert.match(state, /^loaded: $/m);
    const images = ok(OTHER, "after-crash", "images");
    assert.doesNotMatch(
      images,
      new RegExp(`^${re((stock.kernel as DistroLab).image)} install ok installed$`, "m"),
    );
    assert.match(images, new RegExp(`^${re((m.kernel as DistroLab).image)} install ok installed$`, "m"));
  });

  it("the repository holds what the fleet needs: kpatch-ts and two versions of the patch for each kernel, each depending on that kernel's image build", () => {
    const debs = readdirSync(repo).filter((f) => f.endsWith(".deb"));
    assert.equal(debs.length, 1 + 2 * Object.keys(machines).length, debs.join(" "));
    const packages = readFileSync(join(repo, "Packages"), "utf8");
    for (const d of [distro!, ...(other ? [other] : [])]) {
      const v = re(d.sourceVersion);
      const k = re(d.kernelRelease);
      assert.match(
        packages,
        new RegExp(
          `^Depends: linux-image-${k} \\(= ${v}\\) \\| linux-image-${k}-unsigned \\(= ${v}\\), kpatch-ts$`,
          "m",
        ),
      );
    }
  });
});
