/**
 * compareElf(): the differences between two models, field by field (sections with their data,
 * relocations, group members and notes; symbols), by index. Derived contents (symbol table,
 * string tables, SHT_SYMTAB_SHNDX) are compared through the model, not as bytes. Used to check
 * that read → write → read gives the model back.
 */
import { SHT_SYMTAB, SHT_SYMTAB_SHNDX } from "../../src/elf/constants.js";
import type { ElfFile } from "../../src/elf/elf-file.js";
import type { ElfSection } from "../../src/elf/elf-section.js";
import type { ElfSymbol } from "../../src/elf/elf-symbol.js";
import { RelocCursor } from "../../src/elf/relocs.js";

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

const idx = (x: { index: number } | undefined): number => (x === undefined ? -1 : x.index);

/** Up to `limit` human-readable differences; empty when the models are the same. */
export function compareElf(a: ElfFile, b: ElfFile, limit = 20): string[] {
  const out: string[] = [];
  const diff = (what: string, x: unknown, y: unknown): void => {
    if (out.length < limit && x !== y) out.push(`${what}: ${String(x)} != ${String(y)}`);
  };
  for (const f of ["type", "machine", "version", "osabi", "abiVersion", "flags", "entry"] as const) {
    diff(`header ${f}`, a[f], b[f]);
  }
  diff("symtab", idx(a.symtab), idx(b.symtab));
  diff("shstrtab", idx(a.shstrtab), idx(b.shstrtab));
  diff("section count", a.sections.length, b.sections.length);
  diff("symbol count", a.symbols.length, b.symbols.length);
  const derived = new Set([a.symtab, a.strtab, a.shstrtab]);
  const n = Math.min(a.sections.length, b.sections.length);
  for (let i = 0; i < n && out.length < limit; i++) {
    compareSection(a.sections[i]!, b.sections[i]!, derived.has(a.sections[i]), diff);
  }
  const m = Math.min(a.symbols.length, b.symbols.length);
  for (let i = 0; i < m && out.length < limit; i++) compareSymbol(a.symbols[i]!, b.symbols[i]!, diff);
  return out;
}

type Diff = (what: string, x: unknown, y: unknown) => void;

function compareSection(x: ElfSection, y: ElfSection, derived: boolean, diff: Diff): void {
  const at = `section ${x.index} ${x.name}`;
  diff(`${at} name`, x.name, y.name);
  diff(`${at} type`, x.type, y.type);
  diff(`${at} flags`, x.flags, y.flags);
  diff(`${at} addr`, x.addr, y.addr);
  diff(`${at} addralign`, x.addralign, y.addralign);
  diff(`${at} entsize`, x.entsize, y.entsize);
  diff(`${at} link`, idx(x.link), idx(y.link));
  diff(`${at} info`, x.info, y.info);
  diff(`${at} base`, idx(x.base), idx(y.base));
  diff(`${at} rela`, idx(x.rela), idx(y.rela));
  diff(`${at} group`, idx(x.group), idx(y.group));
  diff(`${at} section symbol`, idx(x.sectionSymbol), idx(y.sectionSymbol));
  const sized = !derived && x.type !== SHT_SYMTAB && x.type !== SHT_SYMTAB_SHNDX;
  if (sized) diff(`${at} size`, x.size, y.size);
  if (sized && !bytesEqual(x.data, y.data)) diff(`${at} data`, "bytes", "other bytes");
  // Through cursors: relocations not decoded yet (vmlinux.o has millions) are compared in place.
  const xr = new RelocCursor(x);
  const yr = new RelocCursor(y);
  diff(`${at} reloc count`, xr.count, yr.count);
  const nr = Math.min(xr.count, yr.count);
  for (let i = 0; i < nr; i++) {
    if (
      xr.offset(i) !== yr.offset(i) ||
      xr.type(i) !== yr.type(i) ||
      xr.addend(i) !== yr.addend(i) ||
      xr.symbol(i).index !== yr.symbol(i).index
    ) {
      diff(`${at} reloc ${i}`, relocText(xr, i), relocText(yr, i));
      return;
    }
  }
  diff(`${at} group flags`, x.groupFlags, y.groupFlags);
  diff(`${at} group signature`, idx(x.signature), idx(y.signature));
  diff(`${at} members`, x.members.map((s) => s.index).join(","), y.members.map((s) => s.index).join(","));
  diff(`${at} note count`, x.notes.length, y.notes.length);
  for (let i = 0; i < Math.min(x.notes.length, y.notes.length); i++) {
    const p = x.notes[i]!;
    const q = y.notes[i]!;
    diff(`${at} note ${i} name`, p.name, q.name);
    diff(`${at} note ${i} type`, p.type, q.type);
    if (!bytesEqual(p.desc, q.desc)) diff(`${at} note ${i} desc`, "bytes", "other bytes");
  }
}

function relocText(r: RelocCursor, i: number): string {
  return `0x${r.offset(i).toString(16)} type ${r.type(i)} sym ${r.symbol(i).index} ${r.addend(i)}`;
}

function compareSymbol(x: ElfSymbol, y: ElfSymbol, diff: Diff): void {
  const at = `symbol ${x.index} ${x.name}`;
  diff(`${at} name`, x.name, y.name);
  diff(`${at} type`, x.type, y.type);
  diff(`${at} bind`, x.bind, y.bind);
  diff(`${at} other`, x.other, y.other);
  diff(`${at} section`, idx(x.section), idx(y.section));
  diff(`${at} shndx`, x.section ? 0 : x.shndx, y.section ? 0 : y.shndx);
  diff(`${at} value`, x.value, y.value);
  diff(`${at} size`, x.size, y.size);
}
