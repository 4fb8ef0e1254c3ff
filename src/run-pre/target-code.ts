/**
 * Where the run-pre check reads the code the target kernel runs: vmlinux's from the kernel image
 * (a vmlinux, or the vmlinux inside a vmlinuz), located through the image's own symbols (ELF
 * symtab, else kallsyms tables); a module's from its .ko (or .ko.xz/.ko.zst), located through the
 * module's symbol table, whose relocations the module loader fills in.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { readElf, STT_FUNC } from "../elf/index.js";
import type { KernelImage, KernelSymbols } from "../kernel-image/index.js";
import { KpatchError } from "../util/errors.js";
import { functionCode } from "./function-code.js";
import type { TheirCode } from "./site-forms.js";

export interface TargetFunction extends TheirCode {
  address: bigint;
}

export interface TargetCode {
  /** What the code is read from, for the report. */
  readonly source: string;
  /**
   * The function `name` at sympos (0: the only one), with at least `size` bytes when there are;
   * a string saying why when the target has no such function.
   */
  find(name: string, sympos: number, size: number): TargetFunction | string;
  /** How many functions of that name the target has. */
  count(name: string): number;
}

/** Code read from memory or a file by address, located through a kernel symbol table. */
export interface AddressedCode {
  /** What the code is read from, for the report. */
  readonly path: string;
  symbols(): KernelSymbols;
  /** `length` bytes at `address`, or undefined when not all of them are there. */
  bytesAt(address: bigint, length: number): Uint8Array | undefined;
}

export function imageCode(image: KernelImage): TargetCode {
  return addressedCode(image);
}

/**
 * Code located through kernel symbols: the function's exact size when the table has sizes, else
 * the bytes up to the next symbol (kallsyms' extent), which must be padding past our end.
 */
export function addressedCode(image: AddressedCode): TargetCode {
  return {
    source: image.path,
    count: (name) => image.symbols().named(name).length,
    find(name, sympos, size) {
      const symbols = image.symbols();
      const sym = symbols.find(name, sympos);
      if (!sym) {
        const n = symbols.named(name).length;
        return n === 0
          ? `${symbols.source} has no ${name}`
          : `${symbols.source} has ${n} ${name}, none at sympos ${sympos}`;
      }
      const exact = sym.size !== undefined && sym.size > 0n ? Number(sym.size) : undefined;
      const extent = symbols.extent(sym);
      // 15 bytes more (when there are) to show the kernel's instruction at a difference near the end.
      const want = Math.max(size, exact ?? 0);
      const bytes = image.bytesAt(sym.address, want + 15) ?? image.bytesAt(sym.address, want);
      if (!bytes) return `${image.path} has no code for all of ${name} at 0x${sym.address.toString(16)}`;
      const out: TargetFunction = { address: sym.address, bytes };
      if (exact !== undefined) out.size = exact;
      else if (extent !== undefined && extent < BigInt(size)) out.size = Number(extent);
      else if (extent !== undefined && extent - BigInt(size) < 4096n) {
        const tailAt = sym.address + BigInt(size);
        const tail = image.bytesAt(tailAt, Number(extent) - size);
        if (tail) Object.assign(out, { tail, tailAt });
      }
      return out;
    },
  };
}

/** A module file's bytes, decompressed when it is a .ko.xz or .ko.zst (Debian ships .ko.xz). */
function readModuleFile(path: string): Uint8Array {
  const tool = path.endsWith(".xz")
    ? "xz"
    : path.endsWith(".zst")
      ? "zstd"
      : path.endsWith(".gz")
        ? "gzip"
        : "";
  if (!tool) return readFileSync(path);
  const r = spawnSync(tool, ["-dc", path], { maxBuffer: 1 << 30 });
  if (r.status !== 0 || !r.stdout) {
    throw new KpatchError(
      "RUNPRE_NO_TARGET",
      `Cannot decompress ${path}: ${r.stderr?.toString().trim() || r.error}`,
    );
  }
  return r.stdout;
}

export function moduleCode(path: string): TargetCode {
  const file = readElf(readModuleFile(path), path);
  return {
    source: path,
    count: (name) => file.symbols.filter((s) => s.name === name && s.section && !s.isUndefined).length,
    find(name, sympos) {
      // A module's kallsyms are its symbol table in order: sympos counts in that order.
      const same = file.symbols.filter((s) => s.name === name && s.section && !s.isUndefined);
      const sym = sympos === 0 ? (same.length === 1 ? same[0] : undefined) : same[sympos - 1];
      if (!sym) return `${path} has ${same.length} ${name}${sympos ? `, none at sympos ${sympos}` : ""}`;
      if (sym.type !== STT_FUNC) return `${name} in ${path} is not a function`;
      const code = functionCode(file, sym);
      return { address: sym.value, bytes: code.bytes, linked: code.linked, size: code.bytes.length };
    },
  };
}
