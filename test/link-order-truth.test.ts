/**
 * Link order against ground truth. A stock kernel's symbols come from kallsyms, with no file
 * symbols; which of several same-named locals belongs to an object is told by its link-order run
 * (src/kernel-image/object-run.ts). The lab's vmlinux keeps its STT_FILE blocks: the truth. For
 * every object of vmlinux (vmlinux.a, in link order) and every local name of it that its System.map
 * (kallsyms without file symbols) has more than once, the pick is compared with the copy in the
 * object's own STT_FILE block: no pick may be wrong; how many are settled is printed.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { test } from "node:test";
import { baseName } from "../src/diff/correlate-symbols.js";
import { isFreshStatic } from "../src/diff/policy.js";
import { objectRunNames } from "../src/diff/target-symbols.js";
import { readElf, STB_LOCAL, STT_FILE, STT_FUNC, STT_OBJECT } from "../src/elf/index.js";
import { isLocalType, type KernelSymbol, KernelSymbols } from "../src/kernel-image/index.js";
import { findInObjectRun } from "../src/kernel-image/object-run.js";
import { labBuildDir } from "../src/lab/paths.js";
import { execCheck } from "../src/util/exec.js";

const build = labBuildDir("6.12");
const files = ["vmlinux", "System.map", "vmlinux.a"].map((f) => join(build, f));
const ready = files.every((f) => existsSync(f));

interface Tally {
  duplicates: number;
  settled: number;
  wrong: string[];
  noTruth: number;
  /** Unsettled that need no identity (policy.ts isFreshStatic): the patch copies them. */
  fresh: number;
}

test("link order picks the object's own copy of a duplicated local, never another (lab vmlinux's file symbols as truth)", {
  skip: ready
    ? false
    : `the 6.12 lab kernel is not built (${files.join(", ")}): kpatch-lab setup --kernel 6.12`,
  timeout: 20 * 60_000,
}, async () => {
  const vmlinux = readElf(readFileSync(files[0]!), files[0]);
  const truth = KernelSymbols.fromElf(vmlinux);
  const kallsyms = KernelSymbols.fromSystemMap(readFileSync(files[1]!, "utf8"), "System.map");
  const blocksByFile = new Map<string, number[]>();
  for (const [i, b] of truth.blocks.entries())
    blocksByFile.set(b.file, [...(blocksByFile.get(b.file) ?? []), i]);
  const members = (await execCheck("ar", ["t", files[2]!], { what: "listing vmlinux.a" })).stdout
    .split("\n")
    .filter((m) => m.endsWith(".o"));
  const tally = { functions: newTally(), data: newTally() };
  let objects = 0;
  for (const member of members) {
    const path = member.startsWith("/") ? member : join(build, member);
    if (!existsSync(path)) continue;
    const obj = readElf(readFileSync(path), member);
    const file = basename(obj.symbols.find((s) => s.type === STT_FILE)?.name ?? "");
    const locals = obj.symbols.filter(
      (s) => s.bind === STB_LOCAL && s.section && (s.type === STT_FUNC || s.type === STT_OBJECT) && s.name,
    );
    const block = ownBlock(truth, blocksByFile.get(file) ?? [], new Set(locals.map((s) => s.name)));
    const anchors = objectRunNames(obj);
    objects++;
    for (const name of new Set(locals.map((s) => s.name))) {
      const local = locals.find((s) => s.name === name)!;
      tallyLocal(
        { truth, kallsyms, block, anchors, member },
        local,
        tally[local.type === STT_FUNC ? "functions" : "data"],
      );
    }
  }
  for (const [kind, t] of Object.entries(tally)) {
    process.stdout.write(
      `# ${kind}: ${t.duplicates} duplicated local names of ${objects} objects; settled by link order ${t.settled}, wrong ${t.wrong.length}, truth unknown ${t.noTruth}; of the rest ${t.fresh} need no identity (copied)\n`,
    );
  }
  assert.ok(objects > 500, `only ${objects} objects of vmlinux.a read`);
  assert.ok(
    tally.functions.duplicates > 100,
    `only ${tally.functions.duplicates} duplicated local functions`,
  );
  assert.deepEqual([...tally.functions.wrong, ...tally.data.wrong], [], "wrong picks");
  assert.ok(tally.functions.settled > 0);
});

/** One duplicated local name of an object: settled right, wrong, unknown, or left to a copy. */
function tallyLocal(
  obj: {
    truth: KernelSymbols;
    kallsyms: KernelSymbols;
    block: number | undefined;
    anchors: ReturnType<typeof objectRunNames>;
    member: string;
  },
  local: { name: string },
  t: Tally,
): void {
  const { name } = local;
  const candidates = obj.kallsyms.named(name).filter((s) => isLocalType(s.type));
  if (candidates.length < 2) return;
  t.duplicates++;
  const ours = obj.block === undefined ? undefined : obj.truth.named(name).find((s) => s.block === obj.block);
  if (!ours) {
    t.noTruth++;
    return;
  }
  const { pick } = findInObjectRun(obj.kallsyms, candidates, obj.anchors);
  if (!pick) {
    if (isFreshStatic(baseName(name))) t.fresh++;
    return;
  }
  t.settled++;
  if (pick.address !== ours.address)
    t.wrong.push(`${obj.member}: ${name}: picked ${hex(pick)}, ours ${hex(ours)}`);
}

function newTally(): Tally {
  return { duplicates: 0, settled: 0, wrong: [], noTruth: 0, fresh: 0 };
}

const hex = (s: KernelSymbol): string => s.address.toString(16);

/**
 * The STT_FILE block of vmlinux that is this object's: of the blocks of its file name, the one
 * holding the most of its local names (of those vmlinux has), when that is unique and holds
 * nearly all of them.
 */
function ownBlock(
  truth: KernelSymbols,
  blocks: readonly number[],
  all: ReadonlySet<string>,
): number | undefined {
  // Only names vmlinux keeps (not those of discarded sections: .discard.addressable, ...).
  const names = new Set([...all].filter((n) => truth.has(n)));
  let best: number | undefined;
  let bestScore = -1;
  let tie = false;
  for (const b of blocks) {
    let score = 0;
    for (const n of names) if (truth.blocks[b]!.names.has(n)) score++;
    if (score > bestScore) {
      [best, bestScore, tie] = [b, score, false];
    } else if (score === bestScore) tie = true;
  }
  return tie || bestScore < names.size * 0.9 ? undefined : best;
}
