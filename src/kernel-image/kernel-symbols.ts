/**
 * KernelSymbols: the one home of a kernel's symbols, {name, address, type} in kallsyms order, from
 * whichever source there is: the running kernel's /proc/kallsyms, a System.map, a vmlinux or
 * module with an ELF symbol table, or the kallsyms tables inside a kernel image (kallsyms-tables).
 *
 * sympos is the kernel's (kernel/livepatch/core.c, klp_find_object_symbol): the 1-based position
 * of a symbol among all symbols of the same name, counted in the order kallsyms visits them, 0
 * when the name is unique. kallsyms lists vmlinux in address order (scripts/kallsyms.c sorts by
 * address; 6.2+ walks same-named symbols through kallsyms_seqs_of_names, sorted by name then
 * address then original order, which is the same order); a module in its symbol table order.
 */
import { basename } from "node:path";
import {
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  ET_REL,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_WRITE,
  SHN_ABS,
  STB_LOCAL,
  STB_WEAK,
  STT_FILE,
  STT_FUNC,
  STT_NOTYPE,
  STT_OBJECT,
} from "../elf/index.js";
import { upperBound } from "../util/binary-search.js";
import { KpatchError } from "../util/errors.js";

export interface KernelSymbol {
  name: string;
  address: bigint;
  /** nm's type letter as kallsyms keeps it: t/T text, d/D data, r/R rodata, b/B bss, ...; lower case is local. */
  type: string;
  /** From an ELF symbol table: the index of the STT_FILE block the local symbol is in (-1: none). */
  block?: number;
  /** From an ELF symbol table: st_size (kallsyms and System.map have no sizes: see extent()). */
  size?: bigint;
}

/** An STT_FILE block of an ELF symbol table: its source file name and the local names in it. */
export interface SymbolBlock {
  file: string;
  names: Set<string>;
}

export function isLocalType(type: string): boolean {
  return type !== type.toUpperCase();
}

export class KernelSymbols {
  /** What the symbols were read from (a path, "/proc/kallsyms", "kallsyms tables of <image>"). */
  readonly source: string;
  /** In kallsyms order. */
  readonly symbols: readonly KernelSymbol[];
  /** STT_FILE blocks, when the source is an ELF symbol table; empty otherwise. */
  readonly blocks: readonly SymbolBlock[];
  /** A unique name's one symbol, else the list (no array made for each of 100,000 unique names). */
  readonly #byName = new Map<string, KernelSymbol | KernelSymbol[]>();
  #byAddress: KernelSymbol[] | undefined;

  constructor(source: string, symbols: readonly KernelSymbol[], blocks: readonly SymbolBlock[] = []) {
    this.source = source;
    this.symbols = symbols;
    this.blocks = blocks;
    for (const s of symbols) {
      const known = this.#byName.get(s.name);
      if (known === undefined) this.#byName.set(s.name, s);
      else if (Array.isArray(known)) known.push(s);
      else this.#byName.set(s.name, [known, s]);
    }
  }

  get size(): number {
    return this.symbols.length;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Every symbol named `name`, in kallsyms order (empty when there is none). */
  named(name: string): readonly KernelSymbol[] {
    const known = this.#byName.get(name);
    return known === undefined ? [] : Array.isArray(known) ? known : [known];
  }

  /** Every distinct name. */
  names(): IterableIterator<string> {
    return this.#byName.keys();
  }

  /** The symbol's sympos: 0 when its name is unique, else its 1-based position among the same-named. */
  sympos(sym: KernelSymbol): number {
    const same = this.named(sym.name);
    if (same.length <= 1) return 0;
    const i = same.indexOf(sym);
    if (i < 0) throw new Error(`${sym.name} is not a symbol of ${this.source}`);
    return i + 1;
  }

  /**
   * The symbol the livepatch core would find for (name, sympos), as klp_find_object_symbol does:
   * undefined when there is none, when sympos is 0 and the name is not unique, or when sympos is
   * past the last one.
   */
  find(name: string, sympos = 0): KernelSymbol | undefined {
    const same = this.named(name);
    if (sympos === 0) return same.length === 1 ? same[0] : undefined;
    return same[sympos - 1];
  }

  /** Like find(), but throws KSYMS_NOT_FOUND / KSYMS_AMBIGUOUS naming the symbol. */
  lookup(name: string, sympos = 0): KernelSymbol {
    const sym = this.find(name, sympos);
    if (sym) return sym;
    const n = this.named(name).length;
    if (n === 0)
      throw new KpatchError("KSYMS_NOT_FOUND", `Cannot find ${name} in ${this.source}`, { symbol: name });
    if (sympos === 0) {
      throw new KpatchError(
        "KSYMS_AMBIGUOUS",
        `Cannot tell which of the ${n} symbols named ${name} in ${this.source} is meant: sympos is 0`,
        { symbol: name },
      );
    }
    throw new KpatchError(
      "KSYMS_NOT_FOUND",
      `Cannot find ${name},${sympos} in ${this.source}: there are only ${n} symbols of that name`,
      { symbol: name },
    );
  }

  /** The symbols sorted by address (a stable sort: same-address symbols keep kallsyms order). */
  byAddress(): readonly KernelSymbol[] {
    if (!this.#byAddress) {
      const list = this.symbols;
      let sorted = true;
      for (let i = 1; i < list.length && sorted; i++) sorted = list[i - 1]!.address <= list[i]!.address;
      this.#byAddress = sorted ? [...list] : sortByAddress([...list]);
    }
    return this.#byAddress;
  }

  /**
   * The extent of the code or data at `sym`: up to the next symbol at a higher address, the way
   * kallsyms sizes symbols (kallsyms_lookup_size_offset); undefined for the last one.
   */
  extent(sym: KernelSymbol): bigint | undefined {
    const list = this.byAddress();
    const i = upperBound(list, 0, (s) => (s.address <= sym.address ? 0 : 1));
    return i < list.length ? list[i]!.address - sym.address : undefined;
  }

  /** /proc/kallsyms text: vmlinux's symbols, or with `module` that module's ([module] suffix). */
  static fromProcKallsyms(text: string, options: { module?: string; source?: string } = {}): KernelSymbols {
    const all = KernelSymbols.fromProcKallsymsByObject(text, options.source);
    return all.get(options.module ?? "vmlinux") ?? new KernelSymbols(options.source ?? "/proc/kallsyms", []);
  }

  /**
   * /proc/kallsyms text read in one pass: vmlinux's symbols under "vmlinux", each module's under
   * its name (a check of many target objects parses the text once, not once per object).
   */
  static fromProcKallsymsByObject(text: string, source = "/proc/kallsyms"): Map<string, KernelSymbols> {
    const lists = new Map<string, KernelSymbol[]>([["vmlinux", []]]);
    for (const m of text.matchAll(/^([0-9a-fA-F]+) (\S) (\S+)(?:\t\[(\S+)\])?/gm)) {
      const object = m[4] ?? "vmlinux";
      const list = lists.get(object) ?? [];
      if (list.length === 0) lists.set(object, list);
      list.push({ name: m[3]!, address: BigInt(`0x${m[1]}`), type: m[2]! });
    }
    return new Map([...lists].map(([object, list]) => [object, new KernelSymbols(source, list)]));
  }

  /**
   * A System.map (nm -n of vmlinux), with the symbols scripts/kallsyms.c leaves out of kallsyms
   * left out too (is_ignored_symbol: absolute, undefined, debugging), so positions agree.
   */
  static fromSystemMap(text: string, source = "System.map"): KernelSymbols {
    const out: KernelSymbol[] = [];
    for (const line of text.split("\n")) {
      const m = /^([0-9a-fA-F]+)\s+(\S)\s+(\S+)/.exec(line);
      if (!m) continue;
      const type = m[2]!;
      if ("aAUuNnwv".includes(type)) continue; // absolute, undefined, debugging, undefined weak
      out.push({ name: m[3]!, address: BigInt(`0x${m[1]}`), type });
    }
    return new KernelSymbols(source, out);
  }

  /**
   * An ELF symbol table (vmlinux, a .ko, an object): functions, objects and untyped symbols with a
   * section, with their STT_FILE blocks; in address order for a linked image, table order for a
   * relocatable module.
   */
  static fromElf(file: ElfFile, source = file.path ?? "the ELF file"): KernelSymbols {
    const list: KernelSymbol[] = [];
    const blocks: SymbolBlock[] = [];
    const letters = new Map<ElfSection | undefined, string>();
    let block = -1;
    for (const sym of file.symbols) {
      if (sym.type === STT_FILE) {
        block = blocks.length;
        blocks.push({ file: basename(sym.name), names: new Set() });
        continue;
      }
      if (sym.name === "" || sym.isUndefined) continue;
      if (sym.type !== STT_FUNC && sym.type !== STT_OBJECT && sym.type !== STT_NOTYPE) continue;
      const local = sym.bind === STB_LOCAL;
      const inBlock = local ? block : -1;
      if (inBlock >= 0) blocks[inBlock]!.names.add(sym.name);
      list.push({
        name: sym.name,
        address: sym.value,
        type: nmType(sym, letters),
        block: inBlock,
        size: sym.size,
      });
    }
    return new KernelSymbols(source, file.type === ET_REL ? list : sortByAddress(list), blocks);
  }
}

/**
 * A stable sort by address. Kernel addresses are 64-bit: compared as two 32-bit halves (numbers
 * compare much faster than bigints, and a vmlinux has 100,000 symbols or more).
 */
function sortByAddress(list: KernelSymbol[]): KernelSymbol[] {
  const n = list.length;
  // Each address stored once, read back as its two 32-bit halves: no bigint made per symbol.
  const addresses = new BigUint64Array(n);
  for (let i = 0; i < n; i++) addresses[i] = list[i]!.address;
  const halves = new Uint32Array(addresses.buffer);
  const little = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  const [hiAt, loAt] = little ? [1, 0] : [0, 1];
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort(
    (x, y) =>
      halves[2 * x + hiAt]! - halves[2 * y + hiAt]! || halves[2 * x + loAt]! - halves[2 * y + loAt]! || x - y,
  );
  return order.map((i) => list[i]!);
}

/** nm's letter for a symbol in `sec` that is neither absolute nor weak (lower case: local). */
function sectionLetter(sec: ElfSection | undefined): string {
  const flags = sec?.flags ?? 0n;
  if (flags & SHF_EXECINSTR) return "t";
  if (sec?.isNobits) return "b";
  if (flags & SHF_WRITE) return "d";
  if (flags & SHF_ALLOC) return "r";
  return "n";
}

/**
 * nm's letter for an ELF symbol (upper case when global); `letters` keeps each section's letter,
 * so a vmlinux's 100,000 symbols do not each test the section's flags (bigints).
 */
function nmType(sym: ElfSymbol, letters: Map<ElfSection | undefined, string>): string {
  let t: string;
  if (sym.shndx === SHN_ABS) t = "a";
  else if (sym.bind === STB_WEAK) return sym.type === STT_OBJECT ? "V" : "W";
  else {
    const sec = sym.section;
    t = letters.get(sec) ?? sectionLetter(sec);
    letters.set(sec, t);
  }
  return sym.bind === STB_LOCAL ? t : t.toUpperCase();
}
