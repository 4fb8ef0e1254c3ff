/**
 * A Debian root file system for the lab guest, booted with systemd as init on Debian's stock
 * kernel (src/lab/guest.ts, `rootDisk`), of that kernel's own Debian release: Debian 12
 * (bookworm) for this machine's stock kernel, Debian 13 (trixie) for `--suite trixie`'s.
 * debootstrap's minbase of the suite with systemd-sysv, udev and apt, from the mirror this
 * machine reaches the suite through (src/debian/apt-sources.ts, as the build root), the stock
 * kernel's own image package installed (its modules, and the package a patch package depends
 * on), the suite's own nodejs (Debian 12's 18.20, Debian 13's 20.19; the kpatch-ts package
 * depends on nodejs >= 18.20), systemd-networkd on QEMU's user network, and the lab's command
 * runner (lab/debian/). Made into an ext4 image by mke2fs -d, without mounting anything; the
 * tree is kept as a tar too, from which src/lab/debian-guest.ts makes the same file system with
 * another kernel's image package installed. Cached, keyed by everything that goes in:
 *
 *   lab/debian-<12|13>-<key>/rootfs.ext4    the image (guests boot copies of it)
 *   lab/debian-<12|13>-<key>/rootfs.tar     the tree (owners, modes, device nodes, xattrs)
 *   lab/debian-<12|13>-<key>/ready.json     written last, with the others: complete or absent
 */
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hostAptSources, hostCodename, suiteMirrors } from "../debian/apt-sources.js";
import { findDebianPackage } from "../debian/debian-package.js";
import { codenameSuite, type DebianSuite } from "../debian/kernel-release.js";
import { syncDir } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import { Progress } from "../util/progress.js";
import type { DistroLab } from "./distro.js";
import { readJsonIfExists } from "./paths.js";

/** Bump when the recipe changes in a way the key does not see. */
const ROOTFS_FORMAT = 3;
/** What debootstrap installs on top of minbase (the image package's dependencies among them). */
const ROOTFS_PACKAGES = [
  "systemd-sysv",
  "udev",
  "kmod",
  "initramfs-tools",
  "linux-base",
  "ca-certificates",
  "nodejs",
];
/** Free room in the image beyond what the tree takes (apt's lists and archives, patches). */
const FREE_MB = 384;
const LAB_DEBIAN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "lab", "debian");
const RUNNER_FILES = ["kplab-run", "kplab-run.service", "10-kplab.network"];

export interface DebianRootfsInfo {
  key: string;
  suite: string;
  mirror: string;
  packages: string[];
  kernelRelease: string;
  /** The stock kernel's image package installed in it. */
  imagePackage: string;
  nodeVersion: string;
  sizeBytes: number;
  timings: Record<string, number>;
  createdAt: string;
  /** Another kernel's image package installed in it besides the stock one (src/lab/debian-guest.ts). */
  addedImage?: { name: string; version: string; sha256: string };
}

export interface DebianRootfs extends DebianRootfsInfo {
  dir: string;
  /** The ext4 image; boot a copy (a guest writes to its disk). */
  image: string;
  /** A base's tree, as a tar (src/lab/debian-guest.ts adds kernels to it); not kept for those. */
  tree?: string;
}

/** The Debian release of the stock kernel `distro`: its suite (--suite trixie), else this machine's. */
function rootfsSuite(distro: DistroLab): DebianSuite {
  return codenameSuite(distro.suite ?? hostCodename() ?? "bookworm");
}

/** The mirror debootstrap takes the suite from: this machine's archive mirror (the build root's too). */
function rootfsMirror(): string {
  return suiteMirrors(hostAptSources(), hostCodename()).archive;
}

/** Where the root file system of `distro` is cached (debian-12-<key>, debian-13-<key>). */
export function rootfsDir(distro: DistroLab): {
  dir: string;
  key: string;
  suite: DebianSuite;
  mirror: string;
} {
  const suite = rootfsSuite(distro);
  const mirror = rootfsMirror();
  const key = rootfsKey(distro, suite.codename, mirror);
  return { dir: cachePath("lab", `debian-${suite.debian}-${key}`), key, suite, mirror };
}

function rootfsKey(distro: DistroLab, codename: string, mirror: string): string {
  const runner = RUNNER_FILES.map((f) => readFileSync(join(LAB_DEBIAN, f), "utf8"));
  return createHash("sha256")
    .update(
      JSON.stringify([
        ROOTFS_FORMAT,
        codename,
        mirror,
        ROOTFS_PACKAGES,
        distro.image,
        distro.sourceVersion,
        runner,
      ]),
    )
    .digest("hex")
    .slice(0, 12);
}

/** The Debian root file system for a stock kernel, if it is built. */
export function findDebianRootfs(distro: DistroLab): DebianRootfs | undefined {
  const { dir } = rootfsDir(distro);
  const info = readJsonIfExists<DebianRootfsInfo>(join(dir, "ready.json"));
  return info && { ...info, dir, image: join(dir, "rootfs.ext4"), tree: join(dir, "rootfs.tar") };
}

export function requireDebianRootfs(distro: DistroLab): DebianRootfs {
  const rootfs = findDebianRootfs(distro);
  if (!rootfs) {
    throw new KpatchError(
      "LAB_NOT_SET_UP",
      `Cannot boot Debian on the stock ${distro.series}${distro.suite ? ` ${distro.suite}` : ""} kernel: its root file system is not built; run 'kpatch-lab setup --distro ${distro.series}${distro.suite ? ` --suite ${distro.suite}` : ""} --debian'`,
    );
  }
  return rootfs;
}

/**
 * Runs `use` with a fresh copy of the guest's root file system image (sparse; removed
 * afterwards), so the cached image stays as built; without a guest, with undefined.
 */
export async function withRootDisk<T>(
  guest: { rootfs: DebianRootfs } | undefined,
  use: (disk: string | undefined) => Promise<T>,
): Promise<T> {
  if (!guest) return use(undefined);
  const dir = mkdtempSync(join(tmpdir(), "kplab-root-"));
  try {
    return await use(await copyRootDisk(guest.rootfs, join(dir, "rootfs.ext4")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A copy of the image at `dest` (sparse) for guests to boot and change, over several boots. */
export async function copyRootDisk(rootfs: DebianRootfs, dest: string): Promise<string> {
  await execCheck("cp", ["--sparse=always", rootfs.image, dest], { what: "cp (root disk)" });
  return dest;
}

/** Runs `args` in the tree `root` (chroot), non-interactive. */
async function chroot(root: string, args: string[], what: string, env: NodeJS.ProcessEnv = {}) {
  return execCheck("chroot", [root, ...args], {
    what,
    env: { ...process.env, ...env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C.UTF-8" },
    timeoutMs: 1_200_000,
  });
}

/** Refuses unless this process is root (debootstrap, chroot and dpkg in a tree need it); `what` is being built. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0)
    throw new KpatchError("LAB_NOT_ROOT", `Cannot build ${what}: chroot and dpkg in its tree need root`);
}

/** The stock image package the root file system gets (in the cache), checked with root. */
function rootfsImageDeb(distro: DistroLab): string {
  requireRoot("the Debian root file system");
  const image = findDebianPackage(distro.image, distro.sourceVersion);
  if (!image)
    throw new KpatchError("DISTRO_IMAGE", `Cannot find ${distro.image}=${distro.sourceVersion} in the cache`);
  return image.deb;
}

/** Installs a kernel's image package `deb` in the tree `root`, no initramfs (the lab brings its own). */
export async function installImagePackage(root: string, deb: string): Promise<void> {
  const debs = join(root, "tmp", "kplab-debs");
  mkdirSync(debs, { recursive: true });
  cpSync(deb, join(debs, "linux-image.deb"));
  // INITRD=No: the kernel's postinst hook makes no initramfs.
  await chroot(root, ["dpkg", "-i", "/tmp/kplab-debs/linux-image.deb"], "dpkg -i in the root", {
    INITRD: "No",
  });
  rmSync(debs, { recursive: true, force: true });
}

/** Installs the stock kernel's image package in `root`; the nodejs version the root has. */
async function installStockImage(root: string, imageDeb: string): Promise<string> {
  await installImagePackage(root, imageDeb);
  const nodeVersion = (
    await chroot(root, ["dpkg-query", "-W", "-f", `\${Version}`, "nodejs"], "dpkg-query nodejs")
  ).stdout.trim();
  return nodeVersion;
}

/** The lab's runner files (lab/debian) where systemd and networkd look for them. */
function installRunner(root: string): void {
  for (const f of RUNNER_FILES) {
    const text = readFileSync(join(LAB_DEBIAN, f));
    const to = f.endsWith(".network")
      ? join(root, "etc", "systemd", "network", f)
      : f.endsWith(".service")
        ? join(root, "etc", "systemd", "system", f)
        : join(root, "usr", "local", "sbin", f);
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, text, { mode: f.endsWith(".service") || f.endsWith(".network") ? 0o644 : 0o755 });
  }
}

/** networkd and the lab's runner enabled, no gettys or apt timers, apt's lists and archives emptied. */
async function configureGuestSystem(root: string): Promise<void> {
  installRunner(root);
  writeFileSync(join(root, "etc", "hostname"), "kplab\n");
  writeFileSync(join(root, "etc", "fstab"), "LABEL=kplab-root / ext4 rw,errors=remount-ro 0 0\n");
  writeFileSync(join(root, "etc", "apt", "sources.list"), "");
  writeFileSync(join(root, "etc", "apt", "apt.conf.d", "90kplab"), 'Acquire::Languages "none";\n');
  await chroot(
    root,
    ["systemctl", "enable", "systemd-networkd.service", "kplab-run.service"],
    "systemctl enable",
  );
  const masked = [
    "serial-getty@ttyS0.service",
    "getty@tty1.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
  ];
  await chroot(root, ["systemctl", "mask", ...masked], "systemctl mask");
  await chroot(root, ["apt-get", "clean"], "apt-get clean");
  rmSync(join(root, "var", "lib", "apt", "lists"), { recursive: true, force: true });
  mkdirSync(join(root, "var", "lib", "apt", "lists", "partial"), { recursive: true });
}

/** The tree at `root` as a tar `tar`: owners by number, modes, device nodes, xattrs. */
async function archiveTree(root: string, tar: string): Promise<void> {
  await execCheck("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-cf", tar, "."], {
    what: "tar (root tree)",
  });
}

/** The tree kept by archiveTree, unpacked at `root` as it was. */
export async function unpackTree(tar: string, root: string): Promise<void> {
  mkdirSync(root, { recursive: true });
  await execCheck(
    "tar",
    ["--numeric-owner", "--same-owner", "-p", "--xattrs", "--xattrs-include=*", "-C", root, "-xf", tar],
    { what: "tar -x (root tree)" },
  );
}

/** The tree at `root` as an ext4 image `img` (mke2fs -d, no mount), FREE_MB to spare; `root` removed. */
export async function makeExt4Image(root: string, img: string): Promise<void> {
  const du = await execCheck("du", ["-sxm", root], { what: "du" });
  const usedMb = Number(du.stdout.split(/\s/)[0]);
  await execCheck(
    "mke2fs",
    ["-q", "-t", "ext4", "-L", "kplab-root", "-d", root, img, `${Math.ceil(usedMb * 1.15) + FREE_MB}M`],
    { what: "mke2fs -d" },
  );
  rmSync(root, { recursive: true, force: true });
  await execCheck("sync", [img], { what: "sync" });
}

/**
 * Publishes the root file system built in `tmp` as `dir`: ready.json written last, then one
 * rename, so the cache entry is complete or absent. When another process published it first,
 * keeps theirs (a guest may be booting a copy of it) and drops `tmp`.
 */
export function publishRootfs(tmp: string, dir: string, info: DebianRootfsInfo): DebianRootfs {
  const published = { ...info, dir, image: join(dir, "rootfs.ext4"), tree: join(dir, "rootfs.tar") };
  const theirs = readJsonIfExists<DebianRootfsInfo>(join(dir, "ready.json"));
  if (theirs) {
    rmSync(tmp, { recursive: true, force: true });
    return { ...published, ...theirs };
  }
  writeFileSync(join(tmp, "ready.json"), `${JSON.stringify(info, null, 2)}\n`);
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  syncDir(dirname(dir));
  return published;
}

/** Builds (or finds) the Debian root file system image (its release's) for the stock kernel `distro`. */
export async function buildDebianRootfs(distro: DistroLab, progress = new Progress()): Promise<DebianRootfs> {
  const found = findDebianRootfs(distro);
  if (found) return found;
  const imageDeb = rootfsImageDeb(distro);
  const { dir, key, suite, mirror } = rootfsDir(distro);
  const { codename } = suite;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const root = join(tmp, "root");
    progress.begin(
      "debootstrap",
      `${codename} (Debian ${suite.debian}) minbase + ${ROOTFS_PACKAGES.join(",")} from ${mirror}`,
    );
    await execCheck(
      "debootstrap",
      ["--variant=minbase", `--include=${ROOTFS_PACKAGES.join(",")}`, codename, root, mirror],
      { what: "debootstrap", timeoutMs: 1_800_000 },
    );
    progress.end();
    progress.begin("packages", distro.image);
    const nodeVersion = await installStockImage(root, imageDeb);
    progress.end();
    progress.begin("configure", "networkd, the lab's runner, no gettys or apt timers");
    await configureGuestSystem(root);
    progress.end();
    progress.begin("image", "the tree as a tar, ext4 by mke2fs -d");
    await archiveTree(root, join(tmp, "rootfs.tar"));
    const img = join(tmp, "rootfs.ext4");
    await makeExt4Image(root, img);
    progress.end();

    const info: DebianRootfsInfo = {
      key,
      suite: codename,
      mirror,
      packages: ROOTFS_PACKAGES,
      kernelRelease: distro.kernelRelease,
      imagePackage: distro.image,
      nodeVersion,
      sizeBytes: statSync(img).size,
      timings: { ...progress.timings },
      createdAt: new Date().toISOString(),
    };
    return publishRootfs(tmp, dir, info);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
