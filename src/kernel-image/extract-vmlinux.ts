/**
 * The vmlinux ELF inside a compressed kernel image (vmlinuz, bzImage), the way the kernel's
 * scripts/extract-vmlinux finds it: the compressed payload, decompressed with the system's own
 * tool, accepted when the result is an ELF file. An x86 bzImage says where its payload is (boot
 * protocol 2.08+: payload_offset and payload_length in the setup header); other images are
 * searched for each compressor's magic. The payload of an x86 image is the kernel's vmlinux.bin:
 * vmlinux with every section kept and its symbol table stripped (objcopy -S), followed by its
 * relocation records.
 *
 * The result is cached under <cache>/vmlinux/<sha256 of the image>.elf, written to a temporary
 * file and renamed: the cache has the whole vmlinux or nothing.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { createAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";

interface Compressor {
  name: string;
  magic: readonly number[];
  command: string;
  args: readonly string[];
}

/** scripts/extract-vmlinux's list, in its order (bzip2, lzma and lzo only when installed). */
const COMPRESSORS: readonly Compressor[] = [
  { name: "gzip", magic: [0x1f, 0x8b, 0x08], command: "gzip", args: ["-dc"] },
  {
    name: "xz",
    magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    command: "xz",
    args: ["-dc", "--single-stream"],
  },
  { name: "bzip2", magic: [0x42, 0x5a, 0x68], command: "bzip2", args: ["-dc"] },
  { name: "lzma", magic: [0x5d, 0x00, 0x00, 0x00], command: "unlzma", args: ["-c"] },
  { name: "lzo", magic: [0x89, 0x4c, 0x5a], command: "lzop", args: ["-dc"] },
  { name: "lz4", magic: [0x02, 0x21, 0x4c, 0x18], command: "lz4", args: ["-dc"] },
  { name: "zstd", magic: [0x28, 0xb5, 0x2f, 0xfd], command: "zstd", args: ["-dc"] },
];

export function isElf(bytes: Uint8Array): boolean {
  return bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** Whether the file at `path` is an ELF file (reads its first 4 bytes). */
export function isElfFile(path: string): boolean {
  const head = Buffer.alloc(4);
  const fd = openSync(path, "r");
  try {
    return readSync(fd, head, 0, 4, 0) === 4 && isElf(head);
  } finally {
    closeSync(fd);
  }
}

export interface Payload {
  offset: number;
  length: number;
  compressor: string;
}

/** The x86 boot protocol's payload (setup header "HdrS", version >= 2.08), if the image has one. */
function bootPayload(image: Uint8Array): Payload | undefined {
  if (image.length < 0x260) return undefined;
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (view.getUint32(0x202, true) !== 0x53726448 || view.getUint16(0x206, true) < 0x208) return undefined;
  const setupSects = image[0x1f1] || 4;
  const offset = (setupSects + 1) * 512 + view.getUint32(0x248, true);
  const length = view.getUint32(0x24c, true);
  if (length === 0 || offset + length > image.length) return undefined;
  const c = COMPRESSORS.find((c) => c.magic.every((b, i) => image[offset + i] === b));
  return c ? { offset, length, compressor: c.name } : undefined;
}

/** Every place a compressor's magic occurs, in extract-vmlinux's order (compressor, then offset). */
export function findPayloads(image: Uint8Array): Payload[] {
  const boot = bootPayload(image);
  if (boot) return [boot];
  const out: Payload[] = [];
  for (const c of COMPRESSORS) {
    const first = c.magic[0]!;
    for (let at = image.indexOf(first); at >= 0; at = image.indexOf(first, at + 1)) {
      if (c.magic.every((b, i) => image[at + i] === b))
        out.push({ offset: at, length: image.length - at, compressor: c.name });
    }
  }
  return out;
}

/** Decompresses a payload into `out`; resolves to whether `out` then holds an ELF file. */
function decompress(image: Uint8Array, p: Payload, out: string): Promise<boolean> {
  const c = COMPRESSORS.find((c) => c.name === p.compressor)!;
  return new Promise((resolve, reject) => {
    const fd = openSync(out, "w");
    // Trailing bytes after the stream (the kernel appends the size) make some tools exit non-zero
    // after writing everything: like extract-vmlinux, judge by the output, not the exit status.
    const child = spawn(c.command, c.args, { stdio: ["pipe", fd, "ignore"] });
    child.on("error", (e: NodeJS.ErrnoException) => {
      closeSync(fd);
      if (e.code === "ENOENT") resolve(false);
      else reject(new KpatchError("KIMAGE_EXTRACT_FAILED", `Cannot run ${c.command}: ${e.message}`));
    });
    child.on("close", () => {
      closeSync(fd);
      const head = Buffer.alloc(4);
      const rfd = openSync(out, "r");
      try {
        const n = statSync(out).size >= 4 ? readSync(rfd, head, 0, 4, 0) : 0;
        resolve(n === 4 && isElf(head));
      } finally {
        closeSync(rfd);
      }
    });
    child.stdin?.on("error", () => {});
    child.stdin?.end(image.subarray(p.offset, p.offset + p.length));
  });
}

/** sha256 of the image, the cache key of its vmlinux. */
function imageHash(image: Uint8Array): string {
  return createHash("sha256").update(image).digest("hex");
}

/**
 * The path of the vmlinux ELF inside `imagePath` (a vmlinuz/bzImage, or already a vmlinux, which
 * is returned as it is), extracted into the cache on first use. Throws KIMAGE_NOT_FOUND when the
 * file is missing and KIMAGE_NO_VMLINUX when no payload decompresses to an ELF file.
 */
export async function extractVmlinux(imagePath: string): Promise<string> {
  if (!existsSync(imagePath))
    throw new KpatchError("KIMAGE_NOT_FOUND", `Cannot read ${imagePath}: no such file`);
  if (isElfFile(imagePath)) return imagePath;
  const image = readFileSync(imagePath);
  const out = cachePath("vmlinux", `${imageHash(image)}.elf`);
  if (existsSync(out)) return out;
  const payloads = findPayloads(image);
  for (const p of payloads) {
    try {
      await createAtomic(out, async (tmp) => {
        if (!(await decompress(image, p, tmp))) throw new NotThisOne();
      });
      return out;
    } catch (e) {
      if (!(e instanceof NotThisOne)) throw e;
    }
  }
  const tried = [...new Set(payloads.map((p) => p.compressor))].join(", ") || "none found";
  throw new KpatchError(
    "KIMAGE_NO_VMLINUX",
    `Cannot find vmlinux in ${imagePath}: no compressed payload decompresses to an ELF file (payloads: ${tried})`,
  );
}

class NotThisOne extends Error {}
