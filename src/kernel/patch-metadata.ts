/**
 * What a livepatch module patches, read from its own metadata without loading it: the static
 * `struct klp_patch` that klp_enable_patch() is given, its `klp_object` array (one per target:
 * vmlinux or a module) and their `klp_func` arrays (old_name, new_func, old_sympos).
 *
 * In the .ko these are initialised data plus relocations: klp_patch.mod points at
 * __this_module, .objs at the object array; each object's .name and .funcs, each function's
 * .old_name and .new_func are relocations too. Only the leading "external" fields have fixed
 * offsets (include/linux/livepatch.h); the size of each array entry depends on the kernel's
 * kobject, so it is found from the array symbol's size: the smallest stride for which every
 * entry but the last has its pointers and the last (the terminator) is empty.
 */
import { type ElfFile, type ElfReloc, type ElfSection, type ElfSymbol, R_X86_64_64 } from "../elf/index.js";
import { CALLBACK_KINDS, type CallbackKind } from "../klp/format.js";

export interface PatchedFunctionInfo {
  /** The function replaced (klp_func.old_name). */
  name: string;
  /** klp_func.old_sympos: which of same-named local symbols (0: the name is unique). */
  sympos: number;
  /** The replacement, a symbol of the patch module (klp_func.new_func). */
  newFunction: string | undefined;
}

export interface PatchedObjectInfo {
  /** "vmlinux" or the name of the module the functions live in. */
  name: string;
  functions: PatchedFunctionInfo[];
  /** klp_callbacks that are set, by field name (pre_patch, post_patch, ...). */
  callbacks: Partial<Record<CallbackKind, string>>;
}

export interface PatchMetadata {
  objects: PatchedObjectInfo[];
  /** klp_patch.replace: atomic replace of every patch loaded before. */
  replace: boolean;
  /** klp_patch.states: system state ids and versions the patch declares. */
  states: { id: number; version: number }[];
}

/** Field offsets of the external parts of the livepatch structures (x86-64). */
const KLP_PATCH = { mod: 0, objs: 8, states: 16, replace: 24 } as const;
/** klp_object.callbacks holds one pointer per CALLBACK_KINDS entry, in that order. */
const KLP_OBJECT = { name: 0, funcs: 8, callbacks: 16, externalSize: 56 } as const;
const KLP_FUNC = { oldName: 0, newFunc: 8, oldSympos: 16, externalSize: 24 } as const;
const KLP_STATE = { id: 0, version: 8, size: 24 } as const;

interface Place {
  section: ElfSection;
  offset: number;
}

/**
 * The patch a livepatch module registers, or undefined when its structures cannot be found
 * (a module that builds them at run time, or a stripped one).
 */
export function findPatchMetadata(elf: ElfFile): PatchMetadata | undefined {
  const relocs = new RelocIndex(elf);
  const thisModule = elf.findSymbol("__this_module");
  if (!thisModule) return undefined;
  for (const { section, offset } of relocs.pointersTo(thisModule)) {
    const objs = relocs.target(section, offset + KLP_PATCH.objs);
    if (!objs) continue;
    const objects = readObjects(elf, relocs, objs);
    if (!objects || objects.length === 0) continue;
    const states = relocs.target(section, offset + KLP_PATCH.states);
    return {
      objects,
      replace: (section.data[offset + KLP_PATCH.replace] ?? 0) !== 0,
      states: states ? readStates(states) : [],
    };
  }
  return undefined;
}

function readObjects(elf: ElfFile, relocs: RelocIndex, at: Place): PatchedObjectInfo[] | undefined {
  const stride = arrayStride(elf, relocs, at, KLP_OBJECT.externalSize, (base) => [base + KLP_OBJECT.funcs]);
  if (!stride) return undefined;
  const out: PatchedObjectInfo[] = [];
  for (let i = 0; i < stride.count - 1; i++) {
    const base = at.offset + i * stride.size;
    const name = relocs.target(at.section, base + KLP_OBJECT.name);
    const funcs = relocs.target(at.section, base + KLP_OBJECT.funcs)!;
    const functions = readFunctions(elf, relocs, funcs);
    if (!functions) return undefined;
    const callbacks: Partial<Record<CallbackKind, string>> = {};
    CALLBACK_KINDS.forEach((field, k) => {
      const r = relocs.at(at.section, base + KLP_OBJECT.callbacks + 8 * k);
      if (r) callbacks[field] = symbolName(elf, r);
    });
    out.push({ name: name ? cString(name) : "vmlinux", functions, callbacks });
  }
  return out;
}

function readFunctions(elf: ElfFile, relocs: RelocIndex, at: Place): PatchedFunctionInfo[] | undefined {
  const stride = arrayStride(elf, relocs, at, KLP_FUNC.externalSize, (base) => [
    base + KLP_FUNC.oldName,
    base + KLP_FUNC.newFunc,
  ]);
  if (!stride) return undefined;
  const out: PatchedFunctionInfo[] = [];
  for (let i = 0; i < stride.count - 1; i++) {
    const base = at.offset + i * stride.size;
    const name = relocs.target(at.section, base + KLP_FUNC.oldName)!;
    const newFunc = relocs.at(at.section, base + KLP_FUNC.newFunc);
    out.push({
      name: cString(name),
      sympos: Number(u64(at.section.data, base + KLP_FUNC.oldSympos)),
      newFunction: newFunc ? symbolName(elf, newFunc) : undefined,
    });
  }
  return out;
}

function readStates(at: Place): { id: number; version: number }[] {
  const out: { id: number; version: number }[] = [];
  for (let off = at.offset; off + KLP_STATE.size <= at.section.data.length; off += KLP_STATE.size) {
    const id = Number(u64(at.section.data, off + KLP_STATE.id));
    if (id === 0) break;
    const version = new DataView(at.section.data.buffer, at.section.data.byteOffset).getUint32(
      off + KLP_STATE.version,
      true,
    );
    out.push({ id, version });
  }
  return out;
}

/**
 * The entry size and count (terminator included) of a NULL-terminated array of structures
 * whose first `external` bytes are what a module initialises: the array symbol's size divided
 * by the smallest stride for which every entry but the last has its `required` pointers and
 * no pointer past `external`, and the last is all zero.
 */
function arrayStride(
  elf: ElfFile,
  relocs: RelocIndex,
  at: Place,
  external: number,
  required: (base: number) => number[],
): { size: number; count: number } | undefined {
  const sym = elf.symbolAt(at.section, at.offset);
  if (!sym || Number(sym.value) !== at.offset || sym.size === 0n) return undefined;
  const total = Number(sym.size);
  for (let size = external; size <= total; size += 8) {
    if (total % size !== 0) continue;
    const count = total / size;
    let ok = true;
    for (let i = 0; i < count && ok; i++) {
      const base = at.offset + i * size;
      const last = i === count - 1;
      for (let off = base; off < base + size && ok; off += 8) {
        const r = relocs.at(at.section, off);
        if (last) ok = !r && u64(at.section.data, off) === 0n;
        else if (r && off >= base + external) ok = false;
      }
      if (!last) ok &&= required(base).every((off) => relocs.at(at.section, off) !== undefined);
    }
    if (ok) return { size, count };
  }
  return undefined;
}

function u64(data: Uint8Array, offset: number): bigint {
  if (offset + 8 > data.length) return 0n;
  return new DataView(data.buffer, data.byteOffset).getBigUint64(offset, true);
}

/** The NUL-terminated string a pointer points at. */
function cString(at: Place): string {
  const data = at.section.data;
  let end = at.offset;
  while (end < data.length && data[end] !== 0) end++;
  return new TextDecoder().decode(data.subarray(at.offset, end));
}

/** The function a pointer names: its symbol, or for section+offset the symbol defined there. */
function symbolName(elf: ElfFile, r: ElfReloc): string {
  const sec = r.symbol.section;
  if (!r.symbol.isSectionSymbol || !sec) return r.symbol.displayName;
  const offset = r.symbol.value + r.addend;
  const sym = elf.symbolAt(sec, Number(offset));
  if (sym && sym.value === offset) return sym.name;
  return `${r.symbol.displayName}+0x${offset.toString(16)}`;
}

/** 64-bit absolute relocations by the section and offset they patch. */
class RelocIndex {
  readonly #bySection = new Map<ElfSection, Map<number, ElfReloc>>();

  constructor(elf: ElfFile) {
    for (const sec of elf.sections) {
      if (!sec.base || sec.relocs.length === 0) continue;
      const map = new Map<number, ElfReloc>();
      for (const r of sec.relocs) if (r.type === R_X86_64_64) map.set(r.offset, r);
      this.#bySection.set(sec.base, map);
    }
  }

  at(section: ElfSection, offset: number): ElfReloc | undefined {
    return this.#bySection.get(section)?.get(offset);
  }

  /** Where a 64-bit pointer stored at (section, offset) points, within this object. */
  target(section: ElfSection, offset: number): Place | undefined {
    const r = this.at(section, offset);
    if (!r?.symbol.section) return undefined;
    return { section: r.symbol.section, offset: Number(r.symbol.value + r.addend) };
  }

  /** Every place that holds a pointer to `symbol`. */
  *pointersTo(symbol: ElfSymbol): Generator<Place> {
    for (const [section, map] of this.#bySection) {
      for (const [offset, r] of map) if (r.symbol === symbol && r.addend === 0n) yield { section, offset };
    }
  }
}
