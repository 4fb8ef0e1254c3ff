/**
 * A fresh string table with tail merging: a string that ends another one is stored inside it
 * (".text" inside ".rela.text"), the way GNU as and ld build .strtab and .shstrtab, so a rewritten
 * object has string tables of the same size as the assembler's.
 */
export class StringTableBuilder {
  private readonly strings = new Set<string>();
  private offsets: Map<string, number> | undefined;
  private kept: { s: string; at: number }[] = [];
  private total = 1;

  add(s: string): void {
    if (s !== "") this.strings.add(s);
  }

  /** Lays the table out; after this, `size` and `offsetOf()` answer. */
  finish(): void {
    // Sort by reversed string; a string that is a suffix of others sorts right after them.
    const list = [...this.strings].sort(compareReversed);
    const offsets = new Map<string, number>();
    let prev = "";
    let prevAt = 0;
    let total = 1; // offset 0 is the empty string
    for (const s of list) {
      let at: number;
      if (prev.length >= s.length && prev.endsWith(s)) at = prevAt + prev.length - s.length;
      else {
        at = total;
        total += s.length + 1;
        this.kept.push({ s, at });
      }
      offsets.set(s, at);
      prev = s;
      prevAt = at;
    }
    this.offsets = offsets;
    this.total = total;
  }

  get size(): number {
    return this.total;
  }

  offsetOf(s: string): number {
    if (s === "") return 0;
    const at = this.offsets?.get(s);
    if (at === undefined) throw new Error(`string table: ${JSON.stringify(s)} was not added before finish()`);
    return at;
  }

  /** Writes the table at `start` of `out` (zeroed before), `size` bytes. */
  write(out: Buffer, start: number): void {
    for (const { s, at } of this.kept) out.write(s, start + at, "latin1");
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
