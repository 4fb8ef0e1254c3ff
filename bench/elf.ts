/**
 * Reads and rewrites every ELF64 object of a tree in one process, then has `objcopy IN OUT` make
 * the same copies (one objcopy per object, run from a shell loop, as a build would), and prints
 * both wall times. Usage: node dist/bench/elf.js [--decode] [DIR]   (default: the lab build tree)
 * --decode decodes every relocation into objects before writing (re-encoding them), the cost a
 * caller pays who looks at all of them; without it relocations nobody asked for are copied.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ELFCLASS64 } from "../src/elf/constants.js";
import { EI } from "../src/elf/layout.js";
import { readElf } from "../src/elf/read-elf.js";
import { writeElf } from "../src/elf/write-elf.js";
import { labObjectTrees, listObjects } from "../src/lab/paths.js";

const args = process.argv.slice(2);
const decode = args.includes("--decode");

function treeFromArgs(): string {
  const arg = args.find((a) => !a.startsWith("--"));
  if (arg) return arg;
  const tree = labObjectTrees()[0];
  if (tree === undefined) {
    console.error(
      "bench/elf: no object tree: pass a directory, or run `kpatch-lab setup` for the lab kernel tree",
    );
    process.exit(2);
  }
  return tree;
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
const sec = (ms: number): string => (ms / 1000).toFixed(2);

function main(): void {
  const tree = treeFromArgs();
  const all = listObjects(tree);
  // 32-bit objects (arch/x86/realmode, boot) are not ours to read, so neither side copies them.
  // Reading every file here also warms the page cache for both runs.
  const files = all.filter((f) => readFileSync(f).subarray(0, 8)[EI.CLASS] === ELFCLASS64);
  const work = mkdtempSync(join(tmpdir(), "kpatch-bench-elf-"));
  try {
    mkdirSync(join(work, "ours"));
    mkdirSync(join(work, "objcopy"));
    let bytesIn = 0;
    let bytesOut = 0;
    let readMs = 0;
    let writeMs = 0;
    const t0 = performance.now();
    files.forEach((file, i) => {
      const bytes = readFileSync(file);
      bytesIn += bytes.length;
      let t = performance.now();
      const elf = readElf(bytes, file);
      if (decode) for (const sec of elf.sections) if (sec.isRela) void sec.relocs.length;
      readMs += performance.now() - t;
      t = performance.now();
      const out = writeElf(elf);
      writeMs += performance.now() - t;
      bytesOut += out.length;
      writeFileSync(join(work, "ours", `${i}.o`), out);
    });
    const oursMs = performance.now() - t0;

    const list = files.map((f, i) => `${f}\t${join(work, "objcopy", `${i}.o`)}`).join("\n");
    writeFileSync(join(work, "list"), `${list}\n`);
    const t1 = performance.now();
    execFileSync(
      "sh",
      [
        "-c",
        `while IFS='\t' read -r in out; do objcopy "$in" "$out" || exit 1; done < "$1"`,
        "sh",
        join(work, "list"),
      ],
      {
        stdio: "inherit",
      },
    );
    const objcopyMs = performance.now() - t1;

    console.log(`tree:      ${tree}`);
    console.log(`objects:   ${files.length} ELF64 (${all.length - files.length} others skipped)`);
    console.log(`input:     ${mb(bytesIn)} MB, output ${mb(bytesOut)} MB`);
    console.log(
      `kpatch-ts: ${sec(oursMs)} s wall (read ${sec(readMs)} s, write ${sec(writeMs)} s, file I/O the rest), ` +
        `${(bytesIn / 1e6 / (oursMs / 1000)).toFixed(0)} MB/s${decode ? ", every relocation decoded" : ""}`,
    );
    console.log(
      `objcopy:   ${sec(objcopyMs)} s wall, ${(bytesIn / 1e6 / (objcopyMs / 1000)).toFixed(0)} MB/s`,
    );
    console.log(
      `ratio:     kpatch-ts / objcopy = ${(oursMs / objcopyMs).toFixed(2)} (below 1: faster than objcopy)`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main();
