/**
 * Fidelity on real kernel objects. For every object of the trees in $KPATCH_ELF_CORPUS
 * (colon-separated) or else of the lab kernel build tree:
 *   - read → write → read gives the same model (compareElf: sections, data, symbols, relocations),
 *     and writing again after decoding every relocation gives the same bytes;
 *   - `readelf -S -s -r -W` of the rewritten file equals the original's but for file offsets, and
 *     for the sizes of .strtab/.shstrtab, which are built fresh: those may only shrink (objtool
 *     appends strings without tail merging, so the original can hold more than it needs);
 *   - `ld -r` accepts the rewritten object (every object: it costs about 5 ms each).
 * readelf runs over batches of 16 objects, its output compared line by line as it comes (vmlinux.o
 * prints more than a string holds); readelf and ld run next to the in-process work, 3 batches at once.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { test } from "node:test";
import { ELFCLASS32 } from "../src/elf/constants.js";
import { EI } from "../src/elf/layout.js";
import { readElf } from "../src/elf/read-elf.js";
import { writeElf } from "../src/elf/write-elf.js";
import { labObjectTrees, listObjects } from "../src/lab/paths.js";
import { compareElf } from "./helpers/compare-elf.js";
import { run, saveBytes } from "./helpers/elf-tools.js";
import { compareReadelf } from "./helpers/readelf-compare.js";

const CONCURRENCY = 3;
/** Objects per readelf run: spawning readelf twice per object costs more than reading them. */
const BATCH = 16;

function corpusTrees(): string[] {
  const env = process.env["KPATCH_ELF_CORPUS"];
  if (env) return env.split(":").filter((d) => d !== "");
  return labObjectTrees();
}

interface Tally {
  objects: number;
  skipped32: number;
  roundTripped: number;
  readelfSame: number;
  linked: number;
  smallerStrtabs: number;
  bytes: number;
  failures: string[];
}

/** Read → write → read in process; returns the rewritten bytes, or undefined after a failure. */
function roundTrip(path: string, bytes: Uint8Array, tally: Tally): Uint8Array | undefined {
  try {
    const model = readElf(bytes, path);
    const out = writeElf(model); // relocations copied as read
    const diffs = compareElf(model, readElf(out, `${path} (rewritten)`));
    if (diffs.length > 0) {
      tally.failures.push(`${path}: model differs after write: ${diffs.slice(0, 3).join("; ")}`);
      return undefined;
    }
    for (const sec of model.sections) if (sec.isRela) void sec.relocs.length; // decode them all
    if (!Buffer.from(writeElf(model)).equals(Buffer.from(out))) {
      tally.failures.push(`${path}: decoded and re-encoded relocations differ from the bytes read`);
      return undefined;
    }
    tally.roundTripped++;
    return out;
  } catch (e) {
    tally.failures.push(`${path}: read/write failed: ${(e as Error).message}`);
    return undefined;
  }
}

/** A batch of objects: one readelf run for the originals and one for the rewritten files. */
async function checkBatch(paths: string[], batch: number, tally: Tally): Promise<void> {
  const jobs: { path: string; rewritten: string }[] = [];
  for (const path of paths) {
    const bytes = new Uint8Array(readFileSync(path));
    if (bytes[EI.CLASS] === ELFCLASS32) {
      tally.skipped32++; // arch/x86/realmode and boot objects are 32-bit, not for us to read
      continue;
    }
    tally.objects++;
    tally.bytes += bytes.length;
    const out = roundTrip(path, bytes, tally);
    if (out) jobs.push({ path, rewritten: saveBytes(`corpus-${batch}-${jobs.length}.o`, out) });
  }
  if (jobs.length === 0) return;
  const linked = saveBytes(`corpus-${batch}.linked.o`, new Uint8Array(0));
  try {
    const verdicts = await compareReadelf(
      jobs.map((j) => j.path),
      jobs.map((j) => j.rewritten),
    );
    for (const [i, { path, rewritten }] of jobs.entries()) {
      const { difference, strtabs } = verdicts[i]!;
      const { original: a, rewritten: b } = strtabs;
      if (difference) tally.failures.push(`${path}: readelf differs at ${difference}`);
      else if (a.length !== b.length || b.some((size, k) => size > a[k]!)) {
        tally.failures.push(`${path}: a string table grew: ${a} -> ${b}`);
      } else {
        tally.readelfSame++;
        if (b.some((size, k) => size < a[k]!)) tally.smallerStrtabs++;
      }
      try {
        await run("ld", ["-r", "-o", linked, rewritten]);
        tally.linked++;
      } catch (e) {
        tally.failures.push(`${path}: ${(e as Error).message.slice(0, 500)}`);
      }
    }
  } catch (e) {
    tally.failures.push(`${paths[0]} and the rest of its batch: ${(e as Error).message.slice(0, 500)}`);
  } finally {
    for (const { rewritten } of jobs) rmSync(rewritten, { force: true });
    rmSync(linked, { force: true });
  }
}

const trees = corpusTrees();

test("the ELF corpus has object trees to check", () => {
  assert.ok(
    trees.length > 0,
    "no kernel object tree: run `kpatch-lab setup` (the lab kernel build tree is the corpus), " +
      "or set KPATCH_ELF_CORPUS=dir1:dir2 to trees of x86-64 objects",
  );
});

for (const tree of trees) {
  test(`every object of ${tree} survives read → write → read, readelf and ld -r`, {
    timeout: 15 * 60_000,
  }, async (t) => {
    const files = listObjects(tree);
    assert.ok(files.length > 0, `no .o or .ko files under ${tree}`);
    const tally: Tally = {
      objects: 0,
      skipped32: 0,
      roundTripped: 0,
      readelfSame: 0,
      linked: 0,
      smallerStrtabs: 0,
      bytes: 0,
      failures: [],
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const batch = next / BATCH;
        const paths = files.slice(next, next + BATCH);
        next += BATCH;
        await checkBatch(paths, batch, tally);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    t.diagnostic(
      `${tally.objects} ELF64 objects (${(tally.bytes / 1e6).toFixed(1)} MB): ${tally.roundTripped} round-tripped, ` +
        `${tally.readelfSame} same readelf, ${tally.linked} accepted by ld -r; ` +
        `${tally.smallerStrtabs} with smaller fresh string tables; ${tally.skipped32} 32-bit objects skipped`,
    );
    assert.equal(
      tally.failures.length,
      0,
      `${tally.failures.length} objects failed:\n${tally.failures.slice(0, 20).join("\n")}`,
    );
    assert.ok(tally.objects > 0, `no ELF64 objects under ${tree}`);
  });
}
