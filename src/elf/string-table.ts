/**
 * A fresh string table with tail merging: a string that ends another one is stored inside it
 * (".text" inside ".rela.text"), the way GNU as and ld build .strtab and .shstrtab, so a rewritten
 * object has string tables of the same size as the assembler's.
 *
 * `add()` hands out ids in call order; after `finish()`, `offsetOf(id)` is the string's offset.
 * No hashing: strings are sorted once by their reversed text, which puts duplicates next to each
 * other and every string right after the longer strings it ends.
 */
export class StringTableBuilder {
  private readonly strings: string[] = [];
  private offsets = new Int32Array(0);
  private kept: number[] = [];
  private total = 1;

  /** Adds a string (duplicates welcome) and returns its id. */
  add(s: string): number {
    this.strings.push(s);
    return this.strings.length - 1;
  }

  /** Lays the table out; after this, `size` and `offsetOf()` answer. */
  finish(): void {
    const strings = this.strings;
    const order = Array.from(strings.keys()).sort((a, b) => compareReversed(strings[a]!, strings[b]!));
    const offsets = new Int32Array(strings.length);
    let prev = "";
    let prevAt = 0;
    let total = 1; // offset 0 is the empty string
    for (const id of order) {
      const s = strings[id]!;
      let at: number;
      if (s === "") at = 0;
      else if (prev.length >= s.length && prev.endsWith(s)) at = prevAt + prev.length - s.length;
      else {
        at = total;
        total += s.length + 1;
        this.kept.push(id);
      }
      offsets[id] = at;
      prev = s;
      prevAt = at;
    }
    this.offsets = offsets;
    this.total = total;
  }

  get size(): number {
    return this.total;
  }

  offsetOf(id: number): number {
    return this.offsets[id]!;
  }

  /** Writes the table at `start` of `out` (zeroed before), `size` bytes. */
  write(out: Buffer, start: number): void {
    for (const id of this.kept) out.write(this.strings[id]!, start + this.offsets[id]!, "latin1");
  }
}

/** Compares from the last character; when one string ends the other, the longer sorts first. */
function compareReversed(a: string, b: string): number {
  let i = a.length - 1;
  let j = b.length - 1;
  for (; i >= 0 && j >= 0; i--, j--) {
    const d = a.charCodeAt(i) - b.charCodeAt(j);
    if (d !== 0) return d;
  }
  return j - i;
}
