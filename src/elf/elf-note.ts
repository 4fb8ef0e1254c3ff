/**
 * SHT_NOTE contents: a sequence of {namesz, descsz, type, name, desc}; the descriptor and the
 * next note start at offsets aligned to the note alignment. Linux and GNU use 4-byte padding except in
 * sections aligned to 8 (.note.gnu.property), which pad to 8.
 */
import type { ErrorLocation } from "../util/errors.js";
import type { ElfInput } from "./binary.js";
import { ElfError } from "./elf-error.js";
import { NHDR } from "./layout.js";

export interface ElfNote {
  /** The owner ("GNU", "Linux", ...); "" for a note without a name (namesz 0). */
  name: string;
  type: number;
  desc: Uint8Array;
}

/** The padding a note section uses: 8 in 8-aligned sections, else 4. */
export function noteAlignment(addralign: number): number {
  return addralign === 8 ? 8 : 4;
}

/** Rounds up without 32-bit bitwise operators: namesz and descsz come from the file, up to 2^32 - 1. */
const pad = (n: number, align: number): number => n + ((align - (n % align)) % align);

/** The caller has checked that [start, start + size) is inside the file. */
export function parseNotes(
  input: ElfInput,
  start: number,
  size: number,
  align: number,
  loc: ErrorLocation,
): ElfNote[] {
  const notes: ElfNote[] = [];
  let at = 0;
  while (at < size) {
    const where = { ...loc, offset: at };
    if (size - at < NHDR.SIZE) {
      throw new ElfError(
        "ELF_BAD_NOTE",
        "Cannot read a note: its header is cut off by the section end",
        input.loc(where),
      );
    }
    const namesz = input.u32(start + at + NHDR.namesz);
    const descsz = input.u32(start + at + NHDR.descsz);
    const type = input.u32(start + at + NHDR.type);
    const nameAt = at + NHDR.SIZE;
    const descAt = pad(nameAt + namesz, align);
    if (descAt > size || descsz > size - descAt) {
      throw new ElfError(
        "ELF_BAD_NOTE",
        `Cannot read a note: name size ${namesz} and descriptor size ${descsz} run past the section end`,
        input.loc(where),
      );
    }
    let name = "";
    if (namesz > 0) {
      if (input.bytes[start + nameAt + namesz - 1] !== 0) {
        throw new ElfError("ELF_BAD_NOTE", "Cannot read a note: its name has no NUL", input.loc(where));
      }
      name = input.buffer.toString("latin1", start + nameAt, start + nameAt + namesz - 1);
    }
    const desc = input.bytes.subarray(start + descAt, start + descAt + descsz);
    notes.push({ name, type, desc });
    at = Math.min(size, descAt + pad(descsz, align));
  }
  return notes;
}

export function notesSize(notes: readonly ElfNote[], align: number): number {
  let size = 0;
  for (const note of notes) {
    const namesz = note.name === "" ? 0 : note.name.length + 1;
    size = pad(pad(size + NHDR.SIZE + namesz, align) + note.desc.length, align);
  }
  return size;
}

/** Writes the notes at `start` of `out` (zeroed), `notesSize()` bytes. */
export function writeNotes(
  out: Buffer,
  view: DataView,
  start: number,
  notes: readonly ElfNote[],
  align: number,
): void {
  let at = start;
  for (const note of notes) {
    const namesz = note.name === "" ? 0 : note.name.length + 1;
    view.setUint32(at + NHDR.namesz, namesz, true);
    view.setUint32(at + NHDR.descsz, note.desc.length, true);
    view.setUint32(at + NHDR.type, note.type, true);
    at += NHDR.SIZE;
    if (namesz > 0) out.write(note.name, at, "latin1");
    at = start + pad(at - start + namesz, align);
    out.set(note.desc, at);
    at = start + pad(at - start + note.desc.length, align);
  }
}
