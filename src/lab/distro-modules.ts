/**
 * The modules a stock kernel needs in the lab guest (virtio PCI, 9p for the host share,
 * virtio-blk and ext4 for the disk), taken from the image package with their dependencies
 * (src/debian/image-modules.ts). They go into the initramfs decompressed, since the guest's
 * busybox insmod passes the bytes to init_module as they are.
 */
import { join } from "node:path";
import { readModule, uncompressedName } from "../debian/image-modules.js";
import { type CpioEntry, parentDirs, S_IFREG } from "./cpio.js";

/**
 * What the guest loads at boot, in this order (each after its dependencies). The /init of the
 * lab mounts 9p and the disk after them; crc32c is what ext4's checksums ask the crypto API for.
 */
export const GUEST_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "virtio_blk", "crc32c_generic", "ext4"];

/**
 * Guest modules loaded only where the image has them: 9p serves --share-host alone, and the
 * cloud-amd64 flavour builds no 9p (its guest runs without the host share).
 */
const OPTIONAL_GUEST_MODULES = new Set(["9pnet_virtio", "9p"]);

/** The guest modules to load from an image that has the modules `has` says it has. */
export function guestModules(has: (name: string) => boolean): string[] {
  return GUEST_MODULES.filter((m) => !OPTIONAL_GUEST_MODULES.has(m) || has(m));
}

/** The list /init reads: module paths below /lib/modules, one a line, dependencies first. */
const GUEST_LOAD_LIST = "lib/modules/kplab.load";

/** The guest path of a module (below lib/modules), with the compression suffix dropped. */
export function guestModulePath(kernelRelease: string, path: string): string {
  return `${kernelRelease}/${uncompressedName(path)}`;
}

/**
 * The initramfs entries for the guest modules of an unpacked image: each module of `order`
 * (paths relative to `modulesDir`) decompressed at /lib/modules/<KVER>/..., and the load list.
 */
export function moduleEntries(
  modulesDir: string,
  kernelRelease: string,
  order: readonly string[],
): CpioEntry[] {
  const files: CpioEntry[] = order.map((p) => ({
    name: `lib/modules/${guestModulePath(kernelRelease, p)}`,
    mode: S_IFREG | 0o644,
    data: readModule(join(modulesDir, p)),
  }));
  const list = order.map((p) => `${guestModulePath(kernelRelease, p)}\n`).join("");
  files.push({ name: GUEST_LOAD_LIST, mode: S_IFREG | 0o644, data: new TextEncoder().encode(list) });
  return [...parentDirs(files.map((f) => f.name)), ...files];
}
