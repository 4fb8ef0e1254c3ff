/**
 * TargetSymbols: the symbol table of the object a patch applies to (vmlinux, a module, any ELF
 * with a symtab, or a System.map), in kallsyms order, for sympos: the 1-based position of a
 * symbol among the target's symbols of the same name (0 when the name is unique). vmlinux's
 * kallsyms are in address order; a module's in its symbol table order.
 *
 * Which of several same-named locals is ours: the one in the STT_FILE block of the target's
 * symtab that fits our object best, by source file name, then by how many of our object's local
 * names the block also has.
 */
import {
  type ElfFile,
  ET_REL,
  readElf,
  STB_LOCAL,
  STT_FILE,
  STT_FUNC,
  STT_NOTYPE,
  STT_OBJECT,
} from "../elf/index.js";
import { baseName } from "./correlate-symbols.js";
import { DiffError } from "./diff-error.js";
import { isIgnoredSymbol, type ObjectIndex } from "./object-index.js";

export interface TargetSymbol {
  name: string;
  value: bigint;
  local: boolean;
  /** Index of the STT_FILE block the symbol is in (-1: none, e.g. a System.map). */
  block: number;
}

export interface ResolvedSymbol {
  /** The name in the target (it may differ from ours in a compiler suffix number). */
  name: string;
  sympos: number;
  value: bigint;
}

export class TargetSymbols {
  readonly path: string;
  /** Same-named symbols, in kallsyms order. */
  readonly byName = new Map<string, TargetSymbol[]>();
  readonly blocks: { file: string; names: Set<string> }[] = [];
  /** Addresses of endbr64 instructions the kernel seals at boot (vmlinux only). */
  sealed: Set<bigint> | undefined;
  #byBase: Map<string, TargetSymbol[]> | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /** vmlinux, a .ko or any ELF object with a symbol table, or a System.map (text). */
  static load(bytes: Uint8Array, path: string): TargetSymbols {
    const isElf = bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
    if (isElf) return TargetSymbols.fromElf(readElf(bytes, path));
    return TargetSymbols.fromSystemMap(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8"),
      path,
    );
  }

  static fromElf(file: ElfFile): TargetSymbols {
    const t = new TargetSymbols(file.path ?? "the target");
    const list: (TargetSymbol & { order: number })[] = [];
    let block = -1;
    file.symbols.forEach((sym, order) => {
      if (sym.type === STT_FILE) {
        block = t.blocks.length;
        t.blocks.push({ file: basename(sym.name), names: new Set() });
        return;
      }
      if (sym.name === "" || sym.isUndefined) return;
      if (sym.type !== STT_FUNC && sym.type !== STT_OBJECT && sym.type !== STT_NOTYPE) return;
      const local = sym.bind === STB_LOCAL;
      const inBlock = local ? block : -1;
      if (inBlock >= 0) t.blocks[inBlock]!.names.add(sym.name);
      list.push({ name: sym.name, value: sym.value, local, block: inBlock, order });
    });
    // kallsyms order: by address for a linked image, table order for a relocatable module.
    if (file.type !== ET_REL)
      list.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.order - b.order));
    for (const s of list) t.#add({ name: s.name, value: s.value, local: s.local, block: s.block });
    if (file.type !== ET_REL) t.sealed = readSealList(file);
    return t;
  }

  static fromSystemMap(text: string, path = "System.map"): TargetSymbols {
    const t = new TargetSymbols(path);
    for (const line of text.split("\n")) {
      const m = /^([0-9a-fA-F]+)\s+(\w)\s+(\S+)/.exec(line);
      if (!m) continue;
      const type = m[2]!;
      if ("aAUwv".includes(type)) continue; // absolute, undefined, undefined weak
      t.#add({ name: m[3]!, value: BigInt(`0x${m[1]}`), local: type !== type.toUpperCase(), block: -1 });
    }
    return t;
  }

  #add(s: TargetSymbol): void {
    const list = this.byName.get(s.name);
    if (list) list.push(s);
    else this.byName.set(s.name, [s]);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * Our symbol `name` (a local or global of the original object `orig`) in the target: its
   * target name, sympos and address. Throws DIFF_SYMBOL_NOT_IN_TARGET or DIFF_SYMPOS_AMBIGUOUS.
   */
  resolve(name: string, local: boolean, orig: ObjectIndex): ResolvedSymbol {
    let same = this.byName.get(name);
    let targetName = name;
    if (!same && baseName(name) !== name) {
      // A clone whose number differs in the running kernel's build: unique base name only.
      const alike = this.#base().get(baseName(name)) ?? [];
      const names = new Set(alike.filter((s) => s.local === local).map((s) => s.name));
      if (names.size === 1) {
        targetName = [...names][0]!;
        same = this.byName.get(targetName);
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
    if (same.length === 1) return { name: targetName, sympos: 0, value: same[0]!.value };
    const ours = local ? this.#pickLocal(same, orig, name) : same.find((s) => !s.local);
    if (!ours) {
      throw new DiffError(
        "DIFF_SYMPOS_AMBIGUOUS",
        `Cannot tell which of the ${same.length} symbols named ${name} in ${this.path} is ours`,
        {
          symbol: name,
        },
      );
    }
    return { name: targetName, sympos: same.indexOf(ours) + 1, value: ours.value };
  }

  #pickLocal(same: TargetSymbol[], orig: ObjectIndex, name: string): TargetSymbol | undefined {
    const locals = same.filter((s) => s.local);
    if (locals.length === 1) return locals[0];
    if (this.blocks.length === 0) {
      throw new DiffError(
        "DIFF_SYMPOS_AMBIGUOUS",
        `Cannot tell which of the ${locals.length} local symbols named ${name} in ${this.path} is ours: it has no STT_FILE symbols (pass vmlinux or the module with --symbols)`,
        { symbol: name },
      );
    }
    const { file, names } = objectLocals(orig);
    let best: TargetSymbol | undefined;
    let bestScore = -1;
    let tie = false;
    for (const s of locals) {
      const block = this.blocks[s.block];
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

  #base(): Map<string, TargetSymbol[]> {
    if (this.#byBase) return this.#byBase;
    const map = new Map<string, TargetSymbol[]>();
    for (const [name, list] of this.byName) {
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

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
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

/** The endbr64 addresses listed between __ibt_endbr_seal and __ibt_endbr_seal_end (s32 relative). */
function readSealList(file: ElfFile): Set<bigint> | undefined {
  const start = file.findSymbol("__ibt_endbr_seal");
  const end = file.findSymbol("__ibt_endbr_seal_end");
  const sec = start?.section;
  if (!start || !end || !sec || sec.isNobits) return undefined;
  const out = new Set<bigint>();
  const view = new DataView(sec.data.buffer, sec.data.byteOffset, sec.data.byteLength);
  for (let at = start.value; at + 4n <= end.value; at += 4n) {
    const off = Number(at - sec.addr);
    if (off < 0 || off + 4 > sec.data.length) return undefined;
    out.add(at + BigInt(view.getInt32(off, true)));
  }
  return out;
}
