/**
 * What the differ knows about one kind of special section: a table of fixed-size entries, each
 * tied to a place in code by one relocation (the anchor). Only the entries whose anchor lands in
 * an included function are kept; the others are dropped with the code they describe.
 */

/** Entry sizes that depend on the kernel's structures (kpatch's *_STRUCT_SIZE). */
export type EntrySizeKey = "bug" | "ex" | "alt" | "para" | "jump" | "orc" | "static_call" | "printk_index";

export const ENTRY_SIZE_KEYS: readonly EntrySizeKey[] = [
  "bug",
  "ex",
  "alt",
  "para",
  "jump",
  "orc",
  "static_call",
  "printk_index",
];

export type EntrySizes = Partial<Record<EntrySizeKey, number>>;

export interface SpecialKind {
  /** The section name, exactly. */
  name: string;
  /** A fixed entry size (set by the format, not by a kernel structure), or the key of a kernel one. */
  size: number | EntrySizeKey;
  /** Offset inside an entry of the relocation that names the code the entry describes. */
  anchor: number;
  /**
   * The module loader reads these entries while the patch module loads: a klp relocation to a
   * vmlinux symbol is applied before that (apply_relocations()), one to a module's symbol only
   * later, so an entry of a module's patch must not need one.
   */
  loadTime: boolean;
  /** A section of code snippets that entries point into (alternatives' replacements). */
  payload?: string;
  /** A section without relocations whose entries pair one to one with these (ORC). */
  parallel?: { name: string; size: number | EntrySizeKey };
  /** When set, an entry for included code cannot be carried by a module: refuse with this reason. */
  refuse?: string;
  /**
   * When set, the entries are not copied: each kept entry's site in the included code is
   * rewritten so that it needs none (runtime constants: runtime-const.ts).
   */
  rewrite?: "runtime-ptr";
  /**
   * Compare a function's entries before and after (mark-changed-entries.ts): their fields outside
   * relocations change what the code does at load (an alternative's CPU feature bit). Not for
   * kinds whose fields follow source lines (__bug_table).
   */
  compare?: boolean;
  /** Why the section exists and what keeping its entries does. */
  why: string;
}

/** The entry size of `kind`, or undefined when it is a kernel structure nobody told us the size of. */
export function entrySizeOf(size: number | EntrySizeKey, sizes: EntrySizes): number | undefined {
  return typeof size === "number" ? size : sizes[size];
}

/**
 * A section of small code snippets that functions jump into and that jump back, with no symbol
 * to tell whose each one is (static_cpu_has()'s .altinstr_aux): cut by decoding, each included
 * function taking along exactly the pieces it enters (code-pieces.ts).
 */
export interface CodePieceKind {
  /** The section name, exactly. */
  name: string;
  /** Why the section exists and when its code runs. */
  why: string;
}

/**
 * A table of fixed-size descriptors that code refers to (rather than entries that refer to code):
 * each descriptor a reference from included code lands in is copied into the output with it, and
 * the reference made to point at the copy. The entry size is the size of the descriptors'
 * symbols, which must all agree.
 */
export interface DescriptorKind {
  /** The section name, exactly. */
  name: string;
  /** A bit field that may differ between two descriptors of the same site (a source line). */
  line?: { offset: number; bits: number };
  /** Why the section exists and what copying a descriptor does. */
  why: string;
}
