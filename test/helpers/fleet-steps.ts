/**
 * The steps test/fleet-apt runs in its Debian guests (shell commands, each named), and the one
 * check every dpkg state-machine case makes: what is loaded live and what is installed for boot
 * equals what dpkg says is configured.
 */
import assert from "node:assert/strict";

export type Step = { name: string; command: string };

/** What one machine's steps need to know about it. */
export interface FleetMachine {
  /** Its patch package (kpatch-patch-<KVER>) and kernel release. */
  pkg: string;
  kver: string;
}

const APT = "apt-get -q -y -o Dpkg::Use-Pty=0";
/** Package version → the module that level installs (kpatch package on replace-v9 / replace-v10). */
const LEVEL_MODULE = { "1": "kpatch_replace_v9", "2": "kpatch_replace_v10" } as const;
export type Level = keyof typeof LEVEL_MODULE;
const STALL = "/sys/kernel/livepatch/kpatch_stall_patch";

/**
 * A step printing the machine's patch state: the running kernel, /proc/cmdline (the modules
 * patch it), the livepatches loaded, the modules installed for boot for each kernel in `kvers`,
 * and dpkg's status of each kernel's patch package.
 */
export function stateStep(name: string, machines: readonly FleetMachine[]): Step {
  const lines = machines.map(
    (m) =>
      `echo "boot ${m.kver}: $(ls /var/lib/kpatch/${m.kver} 2>/dev/null | grep '\\.ko$' | tr '\\n' ' ')"; echo "dpkg ${m.pkg}: $(dpkg-query -W -f '\${Version} \${Status}' ${m.pkg} 2>/dev/null)"`,
  );
  return {
    name,
    command: `echo "running $(uname -r)"; echo "cmdline $(cat /proc/cmdline)"; echo "loaded: $(ls /sys/kernel/livepatch | tr '\\n' ' ')"; ${lines.join("; ")}`,
  };
}

/** A state step's output for machine `m`: dpkg's version and status, modules for boot, livepatches loaded. */
export function readState(output: string, m: FleetMachine) {
  const field = (key: string) => {
    const line = output.split("\n").find((l) => l.startsWith(key));
    assert.ok(line !== undefined, `no '${key}' in:\n${output}`);
    return line.slice(key.length).trim();
  };
  return {
    dpkg: field(`dpkg ${m.pkg}:`),
    boot: field(`boot ${m.kver}:`).split(/\s+/).filter(Boolean),
    loaded: field("loaded:").split(/\s+/).filter(Boolean),
    cmdline: field("cmdline"),
  };
}

/**
 * Asserts a state step's output: `m`'s package is configured at `level` (or not installed at all,
 * undefined) and exactly that level's module is loaded live (when `m` is the running kernel;
 * `loadedHere` says it is) and installed for its kernel's boot; nothing else is loaded.
 */
export function assertConsistent(
  output: string,
  m: FleetMachine,
  level: Level | undefined,
  loadedHere = true,
) {
  const { dpkg, boot, loaded, cmdline } = readState(output, m);
  if (level) {
    assert.equal(dpkg, `${level} install ok installed`, `dpkg says:\n${output}`);
    assert.deepEqual(boot, [`${LEVEL_MODULE[level]}.ko`], `installed for boot:\n${output}`);
    if (loadedHere) {
      assert.deepEqual(loaded, [LEVEL_MODULE[level]], `loaded:\n${output}`);
      assert.match(cmdline, new RegExp(`^kpatch-replace v${level === "1" ? 9 : 10}$`), output);
    }
  } else {
    assert.doesNotMatch(
      dpkg,
      / ok (installed|unpacked|half-installed|half-configured|triggers-awaited|triggers-pending)$/,
      `dpkg says it is still there:\n${output}`,
    );
    assert.deepEqual(boot, [], `installed for boot with no package configured:\n${output}`);
    if (loadedHere) {
      assert.deepEqual(loaded, [], `loaded with no package configured:\n${output}`);
      assert.match(cmdline, /kplab\.root/, output);
    }
  }
}

/** Boot 1: the fleet's apt source, then the patch package for the running kernel (level 1). */
export function installSteps(
  m: FleetMachine,
  /** The guest's command that trusts the fleet's repository and adds it (test/helpers/apt-repository.ts). */
  sources: string,
  other?: FleetMachine,
): Step[] {
  return [
    { name: "sources", command: sources },
    { name: "before", command: "uname -r; cat /proc/cmdline" },
    // The other kernel's patch: its image package is installed (the disk's stock kernel) but
    // this machine does not run that kernel, so nothing happens live.
    ...(other
      ? [
          { name: "other", command: `${APT} install ${other.pkg}=1` },
          { name: "other-live", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
        ]
      : []),
    { name: "install", command: `${APT} install ${m.pkg}=1` },
    { name: "patched", command: "cat /proc/cmdline; ls /sys/kernel/livepatch" },
    { name: "list", command: "kpatch list" },
    { name: "enabled", command: "systemctl is-enabled kpatch.service kpatch-confirm.timer" },
    {
      name: "packages",
      command: `dpkg-query -W -f '\${Package} \${Version} \${Status}\\n' kpatch-ts nodejs ${m.pkg}`,
    },
  ];
}

/**
 * Boot 2: the patch back at boot under systemd, then dpkg's state machine through apt and dpkg,
 * a state step after each: upgrade, remove, reinstall, downgrade, an upgrade only unpacked then
 * removed, purge, a fresh install whose postinst fails (then configured again: level 2, for
 * the crash boot).
 */
export function rebootSteps(m: FleetMachine): Step[] {
  const state = (name: string) => stateStep(name, [m]);
  return [
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
    { name: "upgrade", command: `${APT} install ${m.pkg}` },
    {
      name: "upgraded",
      command: `cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/${m.kver}/`,
    },
    state("upgraded-state"),
    { name: "version", command: `dpkg-query -W -f '\${Version}\\n' ${m.pkg}` },
    { name: "remove", command: `${APT} remove ${m.pkg}` },
    {
      name: "removed",
      command: `cat /proc/cmdline; ls /sys/kernel/livepatch; ls /var/lib/kpatch/${m.kver}/ 2>/dev/null | grep -c .ko`,
    },
    state("removed-state"),
    { name: "reinstall", command: `${APT} install ${m.pkg}` },
    { name: "reinstalled", command: "cat /proc/cmdline" },
    { name: "downgrade", command: `${APT} install --allow-downgrades ${m.pkg}=1` },
    state("downgraded"),
    // Level 2 unpacked only (its postinst never runs), then removed: level 1 must go too.
    {
      name: "unpack-only",
      command: `cd /tmp && apt-get -q download ${m.pkg}=2 && dpkg --unpack ${m.pkg}_2_amd64.deb && dpkg-query -W -f '\${Version} \${Status}\\n' ${m.pkg}`,
    },
    { name: "remove-unpacked", command: `dpkg -r ${m.pkg}` },
    state("unpacked-removed"),
    { name: "install-2", command: `${APT} install ${m.pkg}=2` },
    state("installed-2"),
    { name: "purge", command: `${APT} purge ${m.pkg}` },
    state("purged"),
    // A fresh install whose load fails: another patch's transition is in progress (a kthread
    // never leaves the function kpatch-stall-patch patches), so kpatch load refuses.
    {
      name: "stall",
      command: `insmod kpatch-stall-target.ko && insmod kpatch-stall-patch.ko && cat ${STALL}/transition`,
    },
    { name: "failed-install", command: `${APT} install ${m.pkg}=2` },
    {
      name: "unstall",
      command: `echo 0 > ${STALL}/enabled; i=0; while [ -e ${STALL} ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done; rmmod kpatch_stall_patch && rmmod kpatch_stall_target`,
    },
    state("failed"),
    // dpkg configures it again, now that the load can succeed: level 2 for the crash boot.
    { name: "configure", command: `dpkg --configure ${m.pkg}` },
    state("configured"),
  ];
}

/** The crash-loop guard's boot after a crash: nothing loaded, `kpatch list` says why. */
export function afterCrashSteps(): Step[] {
  return [
    { name: "cmdline", command: "cat /proc/cmdline" },
    { name: "list", command: "kpatch list" },
    { name: "journal", command: "journalctl -b -u kpatch.service -o cat --no-pager" },
    { name: "active", command: "systemctl is-active kpatch.service" },
  ];
}

/** apt-get purge of a kernel's image package (not the running one): its patch package goes with it. */
export function removeImageSteps(image: string, machines: readonly FleetMachine[]): Step[] {
  return [
    { name: "remove-image", command: `${APT} purge ${image}` },
    stateStep("image-removed", machines),
    imagesStep(),
  ];
}

/** dpkg's status of every kernel image package on the machine. */
export function imagesStep(): Step {
  return { name: "images", command: `dpkg-query -W -f '\${Package} \${Status}\\n' 'linux-image-*'` };
}
