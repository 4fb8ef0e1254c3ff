/**
 * Post-link of a livepatch module: the differ leaves every reference to a symbol the module
 * loader cannot resolve (local, or global but not exported) as a relocation against an
 * undefined symbol named `.klp.sym.<objname>.<name>,<sympos>` (src/klp/format.ts). After kbuild has linked the
 * module, this moves those relocations into `.klp.rela.<objname>.<section>` sections
 * (SHF_ALLOC | SHF_RELA_LIVEPATCH, so the loader keeps them and leaves them to livepatch) and
 * marks the symbols SHN_LIVEPATCH, as Documentation/livepatch/module-elf-format.rst requires.
 */
import {
  SHF_ALLOC,
  SHF_INFO_LINK,
  SHF_RELA_LIVEPATCH,
  SHN_LIVEPATCH,
  SHN_UNDEF,
  SHT_RELA,
} from "../elf/constants.js";
import type { ElfFile } from "../elf/elf-file.js";
import type { ElfReloc } from "../elf/elf-reloc.js";
import type { ElfSection } from "../elf/elf-section.js";
import { RELA } from "../elf/layout.js";
import { KpatchError } from "../util/errors.js";
import { KLP_SYM_PREFIX, klpRelaSectionName, parseKlpSymbolName } from "./format.js";

export interface PostLinkStats {
  klpRelocs: number;
  klpSymbols: number;
  klpSections: number;
}

/** Convert the module in place (the caller writes it out). */
export function convertKlpRelocations(ko: ElfFile): PostLinkStats {
  const symtab = ko.symtab;
  if (!symtab)
    throw new KpatchError("KLP_NO_SYMTAB", "Cannot post-link the module: it has no symbol table", {
      file: ko.path,
    });
  const klpSymbols = markKlpSymbols(ko);
  let klpRelocs = 0;
  const created = new Map<string, ElfSection>();
  /** The .klp.rela section of `base` for `objname`, made on first use. */
  const klpRelaFor = (objname: string, base: ElfSection): ElfSection => {
    const name = klpRelaSectionName(objname, base.name);
    let klpRela = created.get(name);
    if (!klpRela) {
      klpRela = ko.addSection({
        name,
        type: SHT_RELA,
        flags: SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH,
        addralign: 8,
        entsize: RELA.SIZE,
        link: symtab,
      });
      klpRela.base = base;
      created.set(name, klpRela);
    }
    return klpRela;
  };
  for (const rela of [...ko.sections]) {
    if (rela.type !== SHT_RELA || !rela.base || rela.flags & SHF_RELA_LIVEPATCH) continue;
    const base = rela.base;
    const keep: ElfReloc[] = [];
    for (const r of rela.relocs) {
      const klp = r.symbol.shndx === SHN_LIVEPATCH ? parseKlpSymbolName(r.symbol.name) : undefined;
      if (!klp) {
        keep.push(r);
        continue;
      }
      if (!(base.flags & SHF_ALLOC)) {
        throw new KpatchError(
          "KLP_RELOC_NOT_ALLOC",
          `Cannot make a livepatch relocation in ${base.name}: the section is not loaded`,
          { file: ko.path, section: base.name, symbol: r.symbol.name, offset: r.offset },
        );
      }
      klpRelaFor(klp.objname, base).relocs.push(r);
      klpRelocs++;
    }
    rela.relocs = keep;
  }
  // A rela section left empty goes: the loader would only skip it.
  const empty = ko.sections.filter(
    (s) => s.type === SHT_RELA && s.relocs.length === 0 && !(s.flags & SHF_RELA_LIVEPATCH) && s.base,
  );
  for (const s of empty) if (s.base) s.base.rela = undefined;
  if (empty.length) ko.removeSections(empty);
  return { klpRelocs, klpSymbols, klpSections: created.size };
}

/** The undefined `.klp.sym.*` symbols become SHN_LIVEPATCH (a malformed name refuses); how many. */
function markKlpSymbols(ko: ElfFile): number {
  let count = 0;
  for (const sym of ko.symbols) {
    if (!sym.name.startsWith(KLP_SYM_PREFIX) || sym.section) continue;
    if (!parseKlpSymbolName(sym.name)) {
      throw new KpatchError("KLP_BAD_SYMBOL", `Cannot read the livepatch symbol name '${sym.name}'`, {
        file: ko.path,
        symbol: sym.name,
      });
    }
    if (sym.shndx === SHN_UNDEF) {
      sym.shndx = SHN_LIVEPATCH;
      count++;
    }
  }
  return count;
}
