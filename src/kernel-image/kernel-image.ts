/**
 * KernelImage: a kernel's code and data as the boot loader loads them, from a vmlinux ELF file
 * (built, from a -dbg package, or extracted from a vmlinuz/bzImage by extractVmlinux): the bytes
 * at a kernel virtual address (the allocated section that holds it), the kernel's symbols (its
 * ELF symbol table, or the kallsyms tables when it has none, as a vmlinuz's vmlinux does not),
 * and the list of endbr64 instructions objtool told the kernel to seal at boot (.ibt_endbr_seal).
 */
import { statSync } from "node:fs";
import { type ElfFile, type ElfSection, ET_REL, readElf, SHF_ALLOC } from "../elf/index.js";
import { upperBound } from "../util/binary-search.js";
import { KpatchError } from "../util/errors.js";
import { extractVmlinux } from "./extract-vmlinux.js";
import { readKallsymsTables } from "./kallsyms-tables.js";
import { fileIdentity, keptSymbols } from "./kept-symbols.js";
import { KernelSymbols } from "./kernel-symbols.js";
import { DEBUG_SECTION, readVmlinuxWithoutDebug } from "./read-vmlinux.js";

const KEEP_OPEN = 2;
const opened = new Map<string, KernelImage>();

/** A vmlinux with fewer named functions than this has no usable symbol table (objcopy -S left a few). */
const MIN_SYMTAB = 1000;

export class KernelImage {
  /** The file the image was opened from (a vmlinuz or a vmlinux). */
  readonly path: string;
  /** The vmlinux ELF file (the cached extraction for a vmlinuz). */
  readonly vmlinux: string;
  readonly elf: ElfFile;
  readonly #loaded: ElfSection[];
  #symbols: KernelSymbols | undefined;
  #seal: Set<bigint> | null | undefined;
  /** The vmlinux's identity when it was read (kept-symbols.ts); without it nothing is kept. */
  readonly #identity: string | undefined;

  constructor(path: string, vmlinux: string, elf: ElfFile, identity?: string) {
    this.path = path;
    this.vmlinux = vmlinux;
    this.elf = elf;
    this.#identity = identity;
    this.#loaded = elf.sections
      .filter((s) => (s.flags & SHF_ALLOC) !== 0n && !s.isNobits && s.data.length > 0)
      .sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  }

  /** Opens a vmlinux, or extracts the vmlinux of a vmlinuz/bzImage (cached) and opens that. */
  static async open(path: string): Promise<KernelImage> {
    const vmlinux = await extractVmlinux(path);
    return KernelImage.fromVmlinux(vmlinux, path);
  }

  /**
   * Opens a vmlinux ELF file. The last few opened stay in memory (keyed by the file's identity:
   * fileIdentity), and its symbol list on disk (kept-symbols.ts): kpatch-build's differ and run-pre check read the same vmlinux (`path`,
   * the vmlinuz it came from, only names it in messages: the first opener's name stays).
   */
  static fromVmlinux(vmlinux: string, path = vmlinux): KernelImage {
    const st = statSync(vmlinux);
    const key = fileIdentity(vmlinux, st);
    const known = opened.get(key);
    if (known) return known;
    const elf = readElf(readVmlinuxWithoutDebug(vmlinux), vmlinux);
    // Left unread (zeros): no debug section passes for its contents.
    for (const s of elf.sections) if (DEBUG_SECTION.test(s.name)) s.data = new Uint8Array(0);
    if (elf.type === ET_REL) {
      throw new KpatchError(
        "KIMAGE_NOT_VMLINUX",
        `Cannot use ${path} as a kernel image: it is a relocatable object`,
      );
    }
    const image = new KernelImage(path, vmlinux, elf, key);
    if (opened.size >= KEEP_OPEN) opened.delete(opened.keys().next().value!);
    opened.set(key, image);
    return image;
  }

  /** The allocated section with file contents that holds `address`, if any. */
  sectionAt(address: bigint): ElfSection | undefined {
    const after = upperBound(this.#loaded, address, (s) => s.addr);
    for (let i = after - 1; i >= 0; i--) {
      const s = this.#loaded[i]!;
      if (address < s.addr + BigInt(s.data.length)) return s;
      if (address - s.addr > 1n << 32n) break;
    }
    return undefined;
  }

  /** The `length` bytes at `address` (a view into the image), or undefined when they are not all in one section. */
  bytesAt(address: bigint, length: number): Uint8Array | undefined {
    const sec = this.sectionAt(address);
    if (!sec) return undefined;
    const off = Number(address - sec.addr);
    if (off + length > sec.data.length) return undefined;
    return sec.data.subarray(off, off + length);
  }

  /** Whether the vmlinux has its ELF symbol table (a built or -dbg vmlinux, not a vmlinuz's). */
  get hasSymtab(): boolean {
    return this.elf.symbols.length >= MIN_SYMTAB;
  }

  /**
   * The kernel's symbols: from the ELF symbol table when there is one, else from the kallsyms
   * tables in .rodata. Throws KIMAGE_NO_SYMBOLS when there are neither (a kernel without KALLSYMS).
   */
  symbols(): KernelSymbols {
    if (this.#symbols) return this.#symbols;
    if (this.hasSymtab) {
      const make = () => KernelSymbols.fromElf(this.elf, this.path);
      this.#symbols = this.#identity
        ? keptSymbols(this.#identity, make, (list, blocks) => new KernelSymbols(this.path, list, blocks))
        : make();
      return this.#symbols;
    }
    const rodata = this.elf.sections.find((s) => s.name === ".rodata");
    const list = rodata && !rodata.isNobits ? readKallsymsTables(rodata.data) : undefined;
    if (!list) {
      throw new KpatchError(
        "KIMAGE_NO_SYMBOLS",
        `Cannot read the symbols of ${this.path}: it has neither a symbol table nor kallsyms tables (CONFIG_KALLSYMS)`,
      );
    }
    this.#symbols = new KernelSymbols(`the kallsyms tables of ${this.path}`, list);
    return this.#symbols;
  }

  /**
   * The addresses of the endbr64 instructions the kernel turns into nops at boot (IBT: functions
   * whose address is never taken), from .ibt_endbr_seal (s32 entries, each relative to itself);
   * undefined when the kernel has no IBT.
   */
  endbrSeal(): Set<bigint> | undefined {
    if (this.#seal === undefined) this.#seal = readEndbrSeal(this.elf) ?? null;
    return this.#seal ?? undefined;
  }
}

/** The sealed endbr64 addresses of a linked vmlinux: its .ibt_endbr_seal section, else the
 * __ibt_endbr_seal..__ibt_endbr_seal_end symbols; undefined when it has neither. */
export function readEndbrSeal(file: ElfFile): Set<bigint> | undefined {
  let sec = file.sections.find((s) => s.name === ".ibt_endbr_seal");
  let start = sec?.addr;
  let end = sec ? sec.addr + BigInt(sec.data.length) : undefined;
  if (!sec) {
    const s = file.findSymbol("__ibt_endbr_seal");
    const e = file.findSymbol("__ibt_endbr_seal_end");
    sec = s?.section;
    start = s?.value;
    end = e?.value;
  }
  if (!sec || sec.isNobits || start === undefined || end === undefined) return undefined;
  const out = new Set<bigint>();
  const view = new DataView(sec.data.buffer, sec.data.byteOffset, sec.data.byteLength);
  for (let at = start; at + 4n <= end; at += 4n) {
    const off = Number(at - sec.addr);
    if (off < 0 || off + 4 > sec.data.length) return undefined;
    out.add(at + BigInt(view.getInt32(off, true)));
  }
  return out;
}
