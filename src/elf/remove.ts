/**
 * What removing sections or symbols takes with it. ElfFile calls these with the doomed sets and
 * then drops the objects; these functions check references and, with `cascade`, widen the sets
 * and cut the references (relocations, group members, back-pointers).
 */
import { SHF_GROUP } from "./constants.js";
import { ElfError } from "./elf-error.js";
import type { ElfFile } from "./elf-file.js";
import type { ElfSection } from "./elf-section.js";
import type { ElfSymbol } from "./elf-symbol.js";

export interface RemoveOptions {
  /** Remove what depends on the removed objects instead of refusing. */
  cascade?: boolean;
}

function inUse(file: ElfFile, sec: ElfSection, why: string): ElfError {
  return new ElfError("ELF_SECTION_IN_USE", `Cannot remove section ${sec.name}: ${why}`, {
    file: file.path,
    section: sec.name,
  });
}

/** Returns the sections to keep and the symbols that go with the removed ones. */
export function removeSections(
  file: ElfFile,
  doomed: Set<ElfSection>,
  options: RemoveOptions,
): { sections: ElfSection[]; symbols: Set<ElfSymbol> } {
  for (const [table, what] of [
    [file.symtab, "it is the symbol table"],
    [file.strtab, "it is the symbol string table"],
    [file.shstrtab, "it is the section name string table"],
  ] as const) {
    if (table && doomed.has(table)) throw inUse(file, table, what);
  }
  if (options.cascade) addDependentSections(file, doomed);
  const symbols = new Set<ElfSymbol>();
  for (const sym of file.symbols) if (sym.section && doomed.has(sym.section)) symbols.add(sym);
  refuseKeptReferences(file, doomed, symbols, options);
  cutSectionReferences(file, doomed, symbols);
  return { sections: file.sections.filter((s) => !doomed.has(s)), symbols };
}

/** Widens `doomed` to every section that applies to, links to, or (a group) only lists doomed ones. */
function addDependentSections(file: ElfFile, doomed: Set<ElfSection>): void {
  const dependsOnDoomed = (sec: ElfSection) =>
    (sec.base && doomed.has(sec.base)) ||
    (sec.link && doomed.has(sec.link)) ||
    (sec.isGroup && sec.members.length > 0 && sec.members.every((m) => doomed.has(m)));
  for (let grew = true; grew; ) {
    grew = false;
    for (const sec of file.sections) {
      if (doomed.has(sec) || !dependsOnDoomed(sec)) continue;
      doomed.add(sec);
      grew = true;
    }
  }
}

/**
 * A kept section that refers to a doomed one (without cascade), a kept group whose signature
 * goes with a doomed section (cascade or not), a symbol defined in a doomed section (without
 * cascade): each refuses, in that order, section by section.
 */
function refuseKeptReferences(
  file: ElfFile,
  doomed: Set<ElfSection>,
  symbols: Set<ElfSymbol>,
  options: RemoveOptions,
): void {
  for (const sec of file.sections) {
    if (doomed.has(sec)) continue;
    if (!options.cascade) refuseReferenceToDoomed(file, sec, doomed);
    if (sec.isGroup && sec.signature && symbols.has(sec.signature)) {
      const why = `it defines ${sec.signature.name}, the signature of group ${sec.name}`;
      throw inUse(file, sec.signature.section!, why);
    }
  }
  if (options.cascade) return;
  for (const sym of symbols) {
    const name = sym.displayName || `symbol ${sym.index}`;
    throw inUse(file, sym.section!, `symbol ${name} is defined in it`);
  }
}

function refuseReferenceToDoomed(file: ElfFile, sec: ElfSection, doomed: Set<ElfSection>): void {
  if (sec.base && doomed.has(sec.base)) throw inUse(file, sec.base, `${sec.name} applies to it`);
  if (sec.link && doomed.has(sec.link)) throw inUse(file, sec.link, `${sec.name} links to it (sh_link)`);
  const member = sec.members.find((m) => doomed.has(m));
  if (member) throw inUse(file, member, `group ${sec.name} lists it`);
}

/** The kept sections' back-pointers, group members and relocations to doomed things, cut. */
function cutSectionReferences(file: ElfFile, doomed: Set<ElfSection>, symbols: Set<ElfSymbol>): void {
  for (const sec of file.sections) {
    if (doomed.has(sec)) continue;
    if (sec.rela && doomed.has(sec.rela)) sec.rela = undefined;
    if (sec.group && doomed.has(sec.group)) {
      sec.group = undefined;
      sec.flags &= ~SHF_GROUP;
    }
    if (sec.isGroup) sec.members = sec.members.filter((m) => !doomed.has(m));
    if (sec.isRela && symbols.size > 0) sec.relocs = sec.relocs.filter((r) => !symbols.has(r.symbol));
  }
}

/** Cuts (with `cascade`) or refuses the references to symbols about to be removed. */
export function removeSymbols(file: ElfFile, doomed: ReadonlySet<ElfSymbol>, options: RemoveOptions): void {
  for (const sec of file.sections) {
    if (sec.isGroup && sec.signature && doomed.has(sec.signature)) {
      throw new ElfError(
        "ELF_SYMBOL_IN_USE",
        `Cannot remove symbol ${sec.signature.name}: it is the signature of group ${sec.name}`,
        { file: file.path, symbol: sec.signature.name },
      );
    }
    if (!sec.isRela) continue;
    if (options.cascade) {
      if (sec.relocs.some((r) => doomed.has(r.symbol)))
        sec.relocs = sec.relocs.filter((r) => !doomed.has(r.symbol));
      continue;
    }
    const reloc = sec.relocs.find((r) => doomed.has(r.symbol));
    if (reloc) {
      const target = sec.base?.name ?? sec.name;
      throw new ElfError(
        "ELF_SYMBOL_IN_USE",
        `Cannot remove symbol ${reloc.symbol.displayName}: a relocation at ${target}+0x${reloc.offset.toString(16)} refers to it`,
        { file: file.path, section: target, symbol: reloc.symbol.displayName, offset: reloc.offset },
      );
    }
  }
}
