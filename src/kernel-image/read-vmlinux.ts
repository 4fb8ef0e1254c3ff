/**
 * A vmlinux's bytes without its DWARF. A built or -dbg vmlinux is mostly debug info (the lab's:
 * 135 of 165 MB in .debug_*), which nothing that opens a kernel image reads (its symbols, code,
 * .rodata's kallsyms, the seal list): reading the whole file cost 0.3 s of a one-function
 * kpatch-build. The file is read section by section into a zero-filled buffer of its size
 * (untouched pages cost nothing), every .debug_* section left out; the caller empties those
 * sections after parsing (`DEBUG_SECTION`), so no zeros pass for their contents. Anything
 * unexpected in the headers (not ELF64 little-endian, extended section numbering, a table or
 * section past the end) reads the whole file, for readElf to judge.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";

/** The sections left unread (the image's sections of that name are emptied after parsing). */
export const DEBUG_SECTION = /^\.debug_/;

const SHT_NOBITS = 8;
const SHDR_SIZE = 64;

function readAt(fd: number, into: Uint8Array, offset: number, length: number): boolean {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, into, offset + done, length - done, offset + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

/** The ranges to read (offset, size) besides the headers, or undefined to read it all. */
function wantedRanges(fd: number, bytes: Uint8Array): [number, number][] | undefined {
  const size = bytes.length;
  if (size < 64 || !readAt(fd, bytes, 0, 64)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const elf64le = view.getUint32(0) === 0x7f454c46 && bytes[4] === 2 && bytes[5] === 1;
  if (!elf64le) return undefined;
  const shoff = Number(view.getBigUint64(0x28, true));
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  if (view.getUint16(0x3a, true) !== SHDR_SIZE || shnum === 0 || shstrndx === 0 || shstrndx >= shnum)
    return undefined;
  if (shoff + shnum * SHDR_SIZE > size || !readAt(fd, bytes, shoff, shnum * SHDR_SIZE)) return undefined;
  const shdr = (i: number) => {
    const at = shoff + i * SHDR_SIZE;
    return {
      name: view.getUint32(at, true),
      type: view.getUint32(at + 4, true),
      offset: Number(view.getBigUint64(at + 0x18, true)),
      size: Number(view.getBigUint64(at + 0x20, true)),
    };
  };
  const names = shdr(shstrndx);
  if (names.offset + names.size > size || !readAt(fd, bytes, names.offset, names.size)) return undefined;
  const table = Buffer.from(bytes.buffer, bytes.byteOffset + names.offset, names.size);
  const ranges: [number, number][] = [];
  for (let i = 1; i < shnum; i++) {
    const s = shdr(i);
    if (s.type === SHT_NOBITS || s.size === 0 || i === shstrndx) continue;
    if (s.offset + s.size > size || s.name >= table.length) return undefined;
    const end = table.indexOf(0, s.name);
    const name = table.toString("latin1", s.name, end < 0 ? table.length : end);
    if (!DEBUG_SECTION.test(name)) ranges.push([s.offset, s.size]);
  }
  return ranges;
}

/** The vmlinux's bytes, its .debug_* sections left as zeros (see DEBUG_SECTION). */
export function readVmlinuxWithoutDebug(path: string): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const bytes = Buffer.alloc(fstatSync(fd).size);
    const ranges = wantedRanges(fd, bytes);
    if (ranges?.every(([offset, size]) => readAt(fd, bytes, offset, size))) return bytes;
  } finally {
    closeSync(fd);
  }
  return readFileSync(path);
}
