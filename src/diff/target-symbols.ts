/**
 * TargetSymbols: the differ's view of the symbols of the object a patch applies to (vmlinux, a
 * module, any ELF with a symtab, a System.map, or a kernel image's kallsyms tables: all read by
 * src/kernel-image's KernelSymbols, which also defines sympos), resolving our symbols to the
 * target's name, sympos and address.
 *
 * Which of several same-named locals is ours: the one in the STT_FILE block of the target's
 * symtab that fits our object best, by source file name, then by how many of our object's local
 * names the block also has. Without STT_FILE blocks (kallsyms, a System.map): the one lying in
 * our object's link-order run (src/kernel-image/object-run.ts), or none, never a guess.
 */
import { basename } from "node:path";
import { type ElfFile, ET_REL, readElf, STT_FILE, STT_FUNC, STT_OBJECT } from "../elf/index.js";
import {
  isElf,
  isLocalType,
  type KernelImage,
  type KernelSymbol,
  KernelSymbols,
  readEndbrSeal,
} from "../kernel-image/index.js";
import { findInObjectRun } from "../kernel-image/object-run.js";
import { baseName } from "./correlate-symbols.js";
import { DiffError } from "./diff-error.js";
import { isIgnoredSymbol, type ObjectIndex } from "./object-index.js";

export interface ResolvedSymbol {
  /** The name in the target (it may differ from ours in a compiler suffix number). */
  name: string;
  sympos: number;
  value: bigint;
}

export class TargetSymbols {
  /** The target's symbols (the one reader of kernel symbols: src/kernel-image). */
  readonly kernel: KernelSymbols;
  /** Addresses of endbr64 instructions the kernel seals at boot (vmlinux only). */
  readonly sealed: Set<bigint> | undefined;
  #byBase: Map<string, KernelSymbol[]> | undefined;

  constructor(kernel: KernelSymbols, sealed?: Set<bigint>) {
    this.kernel = kernel;
    this.sealed = sealed;
  }

  get path(): string {
    return this.kernel.source;
  }

  /** vmlinux, a .ko or any ELF object with a symbol table, or a System.map (text). */
  static load(bytes: Uint8Array, path: string): TargetSymbols {
    if (isElf(bytes)) return TargetSymbols.fromElf(readElf(bytes, path));
    return TargetSymbols.fromSystemMap(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8"),
      path,
    );
  }

  static fromElf(file: ElfFile): TargetSymbols {
    const sealed = file.type !== ET_REL ? readEndbrSeal(file) : undefined;
    return new TargetSymbols(KernelSymbols.fromElf(file, file.path ?? "the target"), sealed);
  }

  /** A kernel image's symbols (its symtab or kallsyms tables) and seal list. */
  static fromImage(image: KernelImage): TargetSymbols {
    return new TargetSymbols(image.symbols(), image.endbrSeal());
  }

  static fromSystemMap(text: string, path = "System.map"): TargetSymbols {
    return new TargetSymbols(KernelSymbols.fromSystemMap(text, path));
  }

  has(name: string): boolean {
    return this.kernel.has(name);
  }

  /**
   * Our symbol `name` (a local or global of the original object `orig`) in the target: its
   * target name, sympos and address. Throws DIFF_SYMBOL_NOT_IN_TARGET or DIFF_SYMPOS_AMBIGUOUS.
   */
  resolve(name: string, local: boolean, orig: ObjectIndex): ResolvedSymbol {
    let same: readonly KernelSymbol[] | undefined = this.kernel.named(name);
    if (same.length === 0) same = undefined;
    let targetName = name;
    if (!same && baseName(name) !== name) {
      // A clone whose number differs in the running kernel's build: unique base name only.
      const alike = this.#base().get(baseName(name)) ?? [];
      const names = new Set(alike.filter((s) => isLocalType(s.type) === local).map((s) => s.name));
      if (names.size === 1) {
        targetName = [...names][0]!;
        same = this.kernel.named(targetName);
      }
    }
    if (!same || same.length === 0) {
      throw new DiffError(
        "DIFF_SYMBOL_NOT_IN_TARGET",
        `Cannot find ${name} in ${this.path}: the running kernel has no symbol of that name`,
        {
          symbol: name,
        },
      );
    }
    if (same.length === 1) return { name: targetName, sympos: 0, value: same[0]!.address };
    const ours = local ? this.#pickLocal(same, orig, name) : same.find((s) => !isLocalType(s.type));
    if (!ours) {
      throw new DiffError(
        "DIFF_SYMPOS_AMBIGUOUS",
        `Cannot tell which of the ${same.length} symbols named ${name} in ${this.path} is ours`,
        {
          symbol: name,
        },
      );
    }
    return { name: targetName, sympos: this.kernel.sympos(ours), value: ours.address };
  }

  #pickLocal(same: readonly KernelSymbol[], orig: ObjectIndex, name: string): KernelSymbol | undefined {
    const locals = same.filter((s) => isLocalType(s.type));
    if (locals.length === 1) return locals[0];
    if (this.kernel.blocks.length === 0) {
      const { pick } = findInObjectRun(this.kernel, locals, objectRunNames(orig.file));
      if (pick) return pick;
      throw new DiffError(
        "DIFF_SYMPOS_AMBIGUOUS",
        `Cannot tell which of the ${locals.length} local symbols named ${name} in ${this.path} is ours (${this.describeCandidates(locals)}): it has no STT_FILE symbols and link order does not settle it`,
        { symbol: name },
      );
    }
    const { file, names } = objectLocals(orig);
    let best: KernelSymbol | undefined;
    let bestScore = -1;
    let tie = false;
    for (const s of locals) {
      const block = this.kernel.blocks[s.block ?? -1];
      if (!block) continue;
      let score = block.file === file ? 1_000_000 : 0;
      for (const n of names) if (block.names.has(n)) score++;
      if (score > bestScore) {
        best = s;
        bestScore = score;
        tie = false;
      } else if (score === bestScore) tie = true;
    }
    if (tie) {
      throw new DiffError(
        "DIFF_SYMPOS_AMBIGUOUS",
        `Cannot tell which of the ${locals.length} local symbols named ${name} in ${this.path} is ours: several STT_FILE blocks fit ${file} equally`,
        { symbol: name },
      );
    }
    return best;
  }

  /** `ffffffff81000010 (sympos 1), ...`: the candidates as a message names them. */
  /** The candidates' addresses and sympos, the first few of a long list (a message stays readable). */
  describeCandidates(list: readonly KernelSymbol[], most = 6): string {
    const shown = list
      .slice(0, most)
      .map((s) => `${s.address.toString(16)} (sympos ${this.kernel.sympos(s)})`);
    return list.length > most ? `${shown.join(", ")} and ${list.length - most} more` : shown.join(", ");
  }

  #base(): Map<string, KernelSymbol[]> {
    if (this.#byBase) return this.#byBase;
    const map = new Map<string, KernelSymbol[]>();
    for (const name of this.kernel.names()) {
      const list = this.kernel.named(name);
      const b = baseName(name);
      const cur = map.get(b);
      if (cur) cur.push(...list);
      else map.set(b, [...list]);
    }
    this.#byBase = map;
    return map;
  }

  /** Whether the kernel seals `name`'s endbr64 at boot; undefined when the target does not say. */
  isSealed(name: string, orig: ObjectIndex): boolean | undefined {
    if (!this.sealed) return undefined;
    try {
      const local = orig.file.findSymbols(name).some((s) => s.isLocal);
      const { value } = this.resolve(name, local, orig);
      return this.sealed.has(value);
    } catch {
      return undefined;
    }
  }
}

const runNames = new WeakMap<ElfFile, Set<string>>();

/**
 * Every function and object name an object defines, local or global: its link-order anchors
 * (src/kernel-image/object-run.ts).
 */
export function objectRunNames(file: ElfFile): ReadonlySet<string> {
  const have = runNames.get(file);
  if (have) return have;
  const names = new Set<string>();
  runNames.set(file, names);
  for (const s of file.symbols) {
    if (s.isUndefined || s.isSectionSymbol || (s.type !== STT_FUNC && s.type !== STT_OBJECT)) continue;
    if (s.name !== "" && !isIgnoredSymbol(s)) names.add(s.name);
  }
  return names;
}

/** Our object's source file name and its local function and object names. */
function objectLocals(orig: ObjectIndex): { file: string; names: Set<string> } {
  const fileSym = orig.file.symbols.find((s) => s.type === STT_FILE);
  const names = new Set<string>();
  for (const u of [...orig.functions, ...orig.objects]) {
    if (u.sym.isLocal && !isIgnoredSymbol(u.sym)) names.add(u.sym.name);
  }
  return { file: basename(fileSym?.name ?? ""), names };
}
