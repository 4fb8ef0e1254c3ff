/**
 * Compares `readelf -S -s -r -W` of original objects with that of their rewritten copies, line by
 * line as the two readelf processes print (vmlinux.o prints over 600 MB, more than a JavaScript
 * string holds). Lines are normalised first: file offsets blanked, "File:" lines reduced to a
 * marker, and the sizes of .strtab/.shstrtab taken out and returned: those tables are built fresh,
 * so their sizes are checked separately (they may only shrink).
 */
import { spawn } from "node:child_process";

export interface ReadelfVerdict {
  /** The first differing line, or undefined when the outputs match. */
  difference: string | undefined;
  /** .strtab/.shstrtab sizes, original and rewritten. */
  strtabs: { original: number[]; rewritten: number[] };
}

const SECTION_ROW = /^( {2}\[[ 0-9]+\] .*? [0-9a-f]{16} )[0-9a-f]+ /;
const STRTAB_ROW = /^( {2}\[[ 0-9]+\] (?:\.strtab|\.shstrtab) +STRTAB +[0-9a-f]{16} OFF )([0-9a-f]+)( .*)$/;

/** readelf's stdout as batches of lines (latin1: names are bytes). */
async function* lineBatches(args: string[], stderr: string[]): AsyncGenerator<string[]> {
  const child = spawn("readelf", args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.setEncoding("latin1");
  child.stderr.setEncoding("latin1");
  child.stderr.on("data", (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  let rest = "";
  try {
    for await (const chunk of child.stdout as AsyncIterable<string>) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      yield lines;
    }
    if (rest !== "") yield [rest];
  } finally {
    child.kill();
  }
  await exited;
}

/** One side's lines, normalised, with the index of the file they belong to. */
class Side {
  private readonly batches: AsyncGenerator<string[]>;
  private lines: string[] = [];
  private at = 0;
  file: number;
  readonly sizes: number[][];

  constructor(paths: string[], stderr: string[]) {
    this.batches = lineBatches(["-S", "-s", "-r", "-W", ...paths], stderr);
    this.file = paths.length === 1 ? 0 : -1; // with several files readelf prints "File: <path>" first
    this.sizes = paths.map(() => []);
  }

  /** Waits for lines when none are left; false at the end of the output. */
  async fill(): Promise<boolean> {
    while (this.at >= this.lines.length) {
      const batch = await this.batches.next();
      if (batch.done) return false;
      this.lines = batch.value;
      this.at = 0;
    }
    return true;
  }

  get available(): number {
    return this.lines.length - this.at;
  }

  /** The next line, normalised; only when `available` > 0. */
  take(): string {
    let line = this.lines[this.at++]!;
    if (line.startsWith("File: ")) {
      this.file++;
      return "File:";
    }
    // Most lines are symbols and relocations: only three kinds of line hold offsets.
    if (line.startsWith("There are "))
      return line.replace(/starting at offset 0x[0-9a-f]+/, "starting at offset X");
    if (line.startsWith("Relocation section "))
      return line.replace(/' at offset 0x[0-9a-f]+/, "' at offset X");
    if (!line.startsWith("  [")) return line;
    line = line.replace(SECTION_ROW, "$1OFF ");
    const strtab = STRTAB_ROW.exec(line);
    if (strtab) {
      this.sizes[this.file]?.push(Number.parseInt(strtab[2]!, 16));
      line = `${strtab[1]}SIZE${strtab[3]}`;
    }
    return line;
  }

  async close(): Promise<void> {
    await this.batches.return(undefined);
  }
}

function withoutPaths(text: string, paths: string[]): string {
  return paths.reduce((t, p) => t.split(p).join("FILE"), text);
}

/**
 * Runs readelf over `originals` and over `rewritten` (same order) and compares. When a file
 * differs, the files after it in the list cannot be lined up any more: they get a difference too.
 */
export async function compareReadelf(originals: string[], rewritten: string[]): Promise<ReadelfVerdict[]> {
  const errA: string[] = [];
  const errB: string[] = [];
  const a = new Side(originals, errA);
  const b = new Side(rewritten, errB);
  const verdicts: ReadelfVerdict[] = originals.map((_, i) => ({
    difference: undefined,
    strtabs: { original: a.sizes[i]!, rewritten: b.sizes[i]! },
  }));
  let line = 0;
  try {
    // Awaiting per batch of lines, not per line: vmlinux.o prints millions.
    compare: for (;;) {
      const [moreA, moreB] = await Promise.all([a.fill(), b.fill()]);
      if (!moreA && !moreB) break;
      const n = moreA && moreB ? Math.min(a.available, b.available) : 1;
      for (let i = 0; i < n; i++) {
        const x = moreA ? a.take() : "(end of output)";
        const y = moreB ? b.take() : "(end of output)";
        line++;
        if (x !== y) {
          const file = Math.max(a.file, 0);
          verdicts[file]!.difference = `line ${line}:\n  original:  ${x}\n  rewritten: ${y}`;
          for (let k = file + 1; k < verdicts.length; k++) {
            verdicts[k]!.difference = "not compared: an earlier file differed";
          }
          break compare;
        }
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  const stderrA = withoutPaths(errA.join(""), originals);
  const stderrB = withoutPaths(errB.join(""), rewritten);
  if (stderrA !== stderrB) {
    const first = verdicts.find((v) => v.difference === undefined);
    if (first)
      first.difference = `readelf warnings differ:\n  original:  ${stderrA}\n  rewritten: ${stderrB}`;
  }
  return verdicts;
}
