/**
 * Whether an entry size fits a special section: the assembler writes every entry alike, so the
 * relocated fields sit at the same offsets in each. An entry may lack a relocation where its
 * field is a constant (4.x static_cpu_has()'s `.long 0` replacement offset of an empty
 * replacement), so the entries' fields are merged into one layout: a wrong size shows as a field
 * that overlaps another one of the layout, runs past the entry's end, or lies past the section,
 * or as an entry without its anchor (every entry describes a place in code: a size cut in half
 * leaves every other entry without one).
 * The last entry may be shorter than the stride by its tail padding (older kernels'
 * .parainstructions end without the alignment), but never cut inside a relocated field.
 */
import type { ElfReloc, ElfSection } from "../../elf/index.js";
import { relocWidth } from "../../x86/reloc-width.js";
import { DiffError } from "../diff-error.js";

interface Field {
  width: number;
  /** The first entry that has a relocation there. */
  entry: number;
}

export interface EntryLayoutInput {
  /** The object's path, for the message. */
  file: string | undefined;
  sec: ElfSection;
  /** The section's relocations, sorted by offset. */
  relocs: readonly ElfReloc[];
  size: number;
  /** The offset in each entry of the relocation that ties it to code. */
  anchor: number;
}

/** Throws DIFF_BAD_ENTRY_SIZE when entries of `size` bytes do not fit the section and its relocations. */
export function checkEntryLayout({ file, sec, relocs, size, anchor }: EntryLayoutInput): void {
  const bad = (why: string) =>
    new DiffError(
      "DIFF_BAD_ENTRY_SIZE",
      `Cannot cut ${sec.name} into entries of ${size} bytes: ${why}; the entry size does not fit this section (a wrong --entry-sizes or kernel tree?)`,
      { file, section: sec.name },
    );
  if (!Number.isSafeInteger(size) || size <= 0) throw bad("not a positive entry size");
  const count = Math.ceil(sec.size / size);
  const fields = new Map<number, Field>();
  const byEntry = new Map<number, number[]>();
  let lastField = 0;
  for (const r of relocs) {
    const i = Math.floor(r.offset / size);
    if (r.offset < 0 || i >= count)
      throw bad(`a relocation at 0x${r.offset.toString(16)} lies past the section's end`);
    const at = r.offset - i * size;
    const width = relocWidth(r.type);
    if (at + width > size)
      throw bad(`entry ${i} has a ${width}-byte relocated field at +${at}, past the entry's end`);
    const offsets = byEntry.get(i) ?? [];
    if (offsets.includes(at)) throw bad(`entry ${i} has two relocations at +${at}`);
    offsets.push(at);
    byEntry.set(i, offsets);
    const known = fields.get(at);
    if (known && known.width !== width)
      throw bad(
        `entry ${i} has a ${width}-byte relocated field at +${at}, entry ${known.entry} a ${known.width}-byte one`,
      );
    if (!known) fields.set(at, { width, entry: i });
    lastField = Math.max(lastField, at + width);
  }
  const layout = [...fields.entries()].sort((a, b) => a[0] - b[0]);
  for (let k = 1; k < layout.length; k++) {
    const [prevAt, prev] = layout[k - 1]!;
    const [at, field] = layout[k]!;
    if (prevAt + prev.width <= at) continue;
    const [first, second] = prev.entry <= field.entry ? [prev, field] : [field, prev];
    const list = (e: number) => (byEntry.get(e) ?? []).join(", ");
    throw bad(
      `entry ${second.entry} has relocations at offsets [${list(second.entry)}], entry ${first.entry} at [${list(first.entry)}]`,
    );
  }
  if (relocs.length > 0) {
    for (let i = 0; i < count; i++) {
      if (!byEntry.get(i)?.includes(anchor))
        throw bad(`entry ${i} has no relocation at +${anchor}, where each entry names the code it describes`);
    }
  }
  const tail = sec.size - (count - 1) * size;
  if (tail < size && tail < lastField)
    throw bad(`its size ${sec.size} cuts the last entry (${tail} of ${size} bytes) inside a relocated field`);
}
