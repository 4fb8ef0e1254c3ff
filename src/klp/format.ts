/**
 * The format between the differ and the module generator, declared once, as kpatch's
 * kpatch-intermediate.h and objtool's klp.h declare theirs. src/diff builds these names,
 * src/klp reads them; neither spells them by hand.
 *
 * - A reference the module loader cannot resolve (a local or unexported symbol of the target)
 *   is a relocation against an undefined symbol `.klp.sym.<objname>.<name>,<sympos>`; after
 *   the link, post-link moves such relocations into `.klp.rela.<objname>.<section>`
 *   (Documentation/livepatch/module-elf-format.rst).
 * - A KPATCH_*_CALLBACK passes through the differ's output as a section
 *   `.kpatch_ts.callbacks.<kind>` holding one 8-byte pointer to the callback function.
 */

export const KLP_SYM_PREFIX = ".klp.sym.";
const KLP_RELA_PREFIX = ".klp.rela.";

/** What a `.klp.sym.` name says: the target object, the symbol's name there, its sympos. */
export interface KlpSymbolName {
  /** "vmlinux" or a module name. */
  objname: string;
  name: string;
  /** 1-based position among same-named symbols in kallsyms order; 0 when the name is unique. */
  sympos: number;
}

const KLP_SYM = /^\.klp\.sym\.([^.]+)\.([^,]+),(\d+)$/;

export function klpSymbolName(objname: string, name: string, sympos: number): string {
  return `${KLP_SYM_PREFIX}${objname}.${name},${sympos}`;
}

export function parseKlpSymbolName(s: string): KlpSymbolName | undefined {
  const m = KLP_SYM.exec(s);
  return m ? { objname: m[1]!, name: m[2]!, sympos: Number(m[3]) } : undefined;
}

/** The section the livepatch core applies for relocations of `section` against `objname`. */
export function klpRelaSectionName(objname: string, section: string): string {
  return `${KLP_RELA_PREFIX}${objname}.${section}`;
}

/** The klp_callbacks members, as struct klp_callbacks (include/linux/livepatch.h) names them. */
export const CALLBACK_KINDS = ["pre_patch", "post_patch", "pre_unpatch", "post_unpatch"] as const;
export type CallbackKind = (typeof CALLBACK_KINDS)[number];

const CALLBACK_SECTION_PREFIX = ".kpatch_ts.callbacks.";
/** Bytes of a callback section: one pointer. */
export const CALLBACK_POINTER_SIZE = 8;

export function callbackSectionName(kind: CallbackKind): string {
  return `${CALLBACK_SECTION_PREFIX}${kind}`;
}

/**
 * The part of a callback section's name after the prefix (the kind, when it is one), or
 * undefined for any other section.
 */
export function callbackSectionKind(section: string): string | undefined {
  return section.startsWith(CALLBACK_SECTION_PREFIX)
    ? section.slice(CALLBACK_SECTION_PREFIX.length)
    : undefined;
}

export function isCallbackKind(kind: string): kind is CallbackKind {
  return (CALLBACK_KINDS as readonly string[]).includes(kind);
}
