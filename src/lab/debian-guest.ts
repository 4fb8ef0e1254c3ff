/**
 * What a Debian guest of a kernel boots (src/lab/guest.ts, `rootDisk`): a Debian root file system
 * (src/lab/debian-rootfs.ts) with that kernel's image package installed, as a machine running
 * that kernel has it. A stock kernel's own root file system has it already. For the lab kernel
 * (its image package, src/lab/lab-image-package.ts) and for a stock kernel booting a root file
 * system made with another one (Debian 12's is made with 6.12; stock 6.1 boots it, a machine with
 * both kernels), the package is installed here, natively: the base's tree unpacked, `dpkg -i` in
 * a chroot (no initramfs: the lab brings its own), mke2fs -d again. Under TCG the same install
 * took the guest's first boot ~11 minutes. Cached beside the base, keyed by the base and the
 * package (name, version, sha256), complete or absent like it:
 *
 *   lab/debian-<12|13>-<base key>-kernel-<key>/rootfs.ext4, ready.json
 */
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { findDebianPackage } from "../debian/debian-package.js";
import { KpatchError } from "../util/errors.js";
import { Progress } from "../util/progress.js";
import {
  type DebianRootfs,
  type DebianRootfsInfo,
  findDebianRootfs,
  installImagePackage,
  makeExt4Image,
  publishRootfs,
  requireDebianRootfs,
  requireRoot,
  unpackTree,
} from "./debian-rootfs.js";
import { type DistroLab, findDistroLab } from "./distro.js";
import { labImagePackage, labImagePackageName, labImagePackageVersion } from "./lab-image-package.js";
import { DEFAULT_SERIES, KERNEL_SERIES, readJsonIfExists } from "./paths.js";
import type { Lab } from "./setup.js";

/** A kernel's image package to install: its name, version and .deb. */
interface ImagePackage {
  name: string;
  version: string;
  deb: string;
}

/** The lab kernel or a stock kernel, as the guest runner boots them. */
type GuestKernel = Lab | DistroLab;

function isStock(kernel: GuestKernel): kernel is DistroLab {
  return "image" in kernel;
}

export interface DebianGuest {
  /** The root file system it boots (a copy of it: src/lab/debian-rootfs.ts, withRootDisk). */
  rootfs: DebianRootfs;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * The root file system `base` with the image package `image` installed (built on first use,
 * natively; cached, complete or absent).
 */
export async function rootfsWithImage(
  base: DebianRootfs,
  image: ImagePackage,
  progress = new Progress(),
): Promise<DebianRootfs> {
  const sha256 = await fileSha256(image.deb);
  const key = createHash("sha256")
    .update(JSON.stringify([base.key, image.name, image.version, sha256]))
    .digest("hex")
    .slice(0, 12);
  const dir = `${base.dir}-kernel-${key}`;
  const found = readJsonIfExists<DebianRootfsInfo>(join(dir, "ready.json"));
  if (found) return { ...found, dir, image: join(dir, "rootfs.ext4") };
  requireRoot(`the Debian root file system with ${image.name}`);
  const tree = base.tree;
  if (!tree || !statSync(tree, { throwIfNoEntry: false })) {
    throw new KpatchError(
      "LAB_NOT_SET_UP",
      `Cannot add ${image.name} to the Debian root file system ${base.dir}: its tree (rootfs.tar) is missing; remove that directory and set it up again`,
    );
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const root = join(tmp, "root");
    progress.begin("tree", `the Debian ${base.suite} tree of ${base.key}`);
    await unpackTree(tree, root);
    progress.begin("packages", `${image.name} ${image.version} (dpkg -i in a chroot)`);
    await installImagePackage(root, image.deb);
    progress.begin("image", "ext4 by mke2fs -d");
    const img = join(tmp, "rootfs.ext4");
    await makeExt4Image(root, img);
    progress.end();
    const { dir: _dir, image: _image, tree: _baseTree, ...baseInfo } = base;
    const info: DebianRootfsInfo = {
      ...baseInfo,
      key,
      addedImage: { name: image.name, version: image.version, sha256 },
      sizeBytes: statSync(img).size,
      timings: { ...progress.timings },
      createdAt: new Date().toISOString(),
    };
    const { tree: _tree, ...rootfs } = publishRootfs(tmp, dir, info);
    return rootfs;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A built Debian root file system of a stock kernel (Debian 12's: made with stock 6.12), or undefined. */
function builtRootfs(): DebianRootfs | undefined {
  for (const series of KERNEL_SERIES) {
    const stock = findDistroLab(series);
    const rootfs = stock && findDebianRootfs(stock);
    if (rootfs) return rootfs;
  }
  return undefined;
}

/** A stock kernel booting a root file system made with another stock kernel: both installed. */
async function stockImageRootfs(kernel: DistroLab, progress?: Progress): Promise<DebianRootfs> {
  const base = builtRootfs();
  if (!base) {
    throw new KpatchError(
      "LAB_NOT_SET_UP",
      `Cannot boot Debian on the stock ${kernel.kernelRelease} kernel: no Debian root file system is built; run 'kpatch-lab setup --distro ${DEFAULT_SERIES} --debian'`,
    );
  }
  const image = findDebianPackage(kernel.image, kernel.sourceVersion);
  if (!image)
    throw new KpatchError("DISTRO_IMAGE", `Cannot find ${kernel.image}=${kernel.sourceVersion} in the cache`);
  return rootfsWithImage(
    base,
    { name: kernel.image, version: kernel.sourceVersion, deb: image.deb },
    progress,
  );
}

/**
 * What a Debian guest of `kernel` boots: the root file system of its stock kernel (set up with
 * `kpatch-lab setup --distro S --debian`), or that of another stock kernel with this one's image
 * package added; on the lab kernel, its stock kernel's with the lab's image package added.
 */
export async function debianGuest(kernel: GuestKernel, progress?: Progress): Promise<DebianGuest> {
  if (isStock(kernel)) {
    const own = findDebianRootfs(kernel);
    return { rootfs: own ?? (await stockImageRootfs(kernel, progress)) };
  }
  const stock = findDistroLab(kernel.series);
  if (!stock) {
    throw new KpatchError(
      "LAB_NOT_SET_UP",
      `Cannot boot Debian on the ${kernel.series} lab kernel: its root file system is made with the stock kernel's; run 'kpatch-lab setup --distro ${kernel.series} --debian'`,
    );
  }
  const image = { name: labImagePackageName(kernel), version: labImagePackageVersion(kernel) };
  const deb = await labImagePackage(kernel);
  return { rootfs: await rootfsWithImage(requireDebianRootfs(stock), { ...image, deb }, progress) };
}
