/**
 * The running kernel's memory through /proc/kcore (fs/proc/kcore.c, CONFIG_PROC_KCORE): an ELF
 * core file whose PT_LOAD segments map kernel virtual addresses (p_vaddr) to file offsets
 * (p_offset), the kernel text among them (KCORE_TEXT) and the module area (KCORE_VMALLOC).
 * Root only (0400, CAP_SYS_RAWIO); its size is the address space, so it is read by position,
 * never whole. Only the ELF header and program headers are parsed: nothing else is there.
 */
import { closeSync, openSync, readSync } from "node:fs";

const PT_LOAD = 1;

interface Segment {
  vaddr: bigint;
  offset: bigint;
  size: bigint;
}

export class KcoreError extends Error {}

export class Kcore {
  readonly path: string;
  readonly #fd: number;
  readonly #segments: Segment[];

  private constructor(path: string, fd: number, segments: Segment[]) {
    this.path = path;
    this.#fd = fd;
    this.#segments = segments;
  }

  /** Opens and parses `path`; throws KcoreError (why) when it is not a readable 64-bit LE core. */
  static open(path = "/proc/kcore"): Kcore {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new KcoreError((e as NodeJS.ErrnoException).code ?? (e as Error).message);
    }
    try {
      return new Kcore(path, fd, readSegments(fd));
    } catch (e) {
      closeSync(fd);
      throw e instanceof KcoreError ? e : new KcoreError((e as Error).message);
    }
  }

  /** `length` bytes at kernel address `address`, or undefined when no segment holds all of them. */
  bytesAt(address: bigint, length: number): Uint8Array | undefined {
    const end = address + BigInt(length);
    const seg = this.#segments.find((s) => s.vaddr <= address && end <= s.vaddr + s.size);
    if (!seg) return undefined;
    const out = Buffer.alloc(length);
    let done = 0;
    try {
      while (done < length) {
        const n = readSync(
          this.#fd,
          out,
          done,
          length - done,
          seg.offset + (address - seg.vaddr) + BigInt(done),
        );
        if (n <= 0) return undefined;
        done += n;
      }
    } catch {
      return undefined; // an unmapped page inside a segment reads as an error
    }
    return new Uint8Array(out.buffer, out.byteOffset, length);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function readAt(fd: number, length: number, position: number): Buffer {
  const b = Buffer.alloc(length);
  const n = readSync(fd, b, 0, length, position);
  if (n !== length) throw new KcoreError(`short read at ${position}`);
  return b;
}

/** Elf64_Ehdr and Elf64_Phdr (include/uapi/linux/elf.h): the PT_LOAD segments. */
function readSegments(fd: number): Segment[] {
  const eh = readAt(fd, 64, 0);
  if (eh.readUInt32BE(0) !== 0x7f454c46) throw new KcoreError("not an ELF file");
  if (eh[4] !== 2 || eh[5] !== 1) throw new KcoreError("not a 64-bit little-endian ELF file");
  if (eh.readUInt16LE(16) !== 4) throw new KcoreError("not an ELF core file");
  const phoff = Number(eh.readBigUInt64LE(32));
  const phentsize = eh.readUInt16LE(54);
  const phnum = eh.readUInt16LE(56);
  if (phentsize < 56 || phnum === 0) throw new KcoreError("no program headers");
  const ph = readAt(fd, phentsize * phnum, phoff);
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (ph.readUInt32LE(at) !== PT_LOAD) continue;
    out.push({
      offset: ph.readBigUInt64LE(at + 8),
      vaddr: ph.readBigUInt64LE(at + 16),
      size: ph.readBigUInt64LE(at + 32), // p_filesz
    });
  }
  if (out.length === 0) throw new KcoreError("no PT_LOAD segment");
  return out;
}
