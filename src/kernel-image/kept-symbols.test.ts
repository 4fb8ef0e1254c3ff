/**
 * kept-symbols on real ELF files of the lab kernel: the kept list is the one fromElf makes, a
 * damaged file is made again, a touched file is another key.
 */
import assert from "node:assert/strict";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readElf } from "../elf/index.js";
import { currentLabLink } from "../lab/paths.js";
import { fileIdentity, keptSymbols } from "./kept-symbols.js";
import { type KernelSymbol, KernelSymbols, type SymbolBlock } from "./kernel-symbols.js";

const labBuild = join(currentLabLink("6.12"), "build");
const labReady = existsSync(join(currentLabLink("6.12"), "ready.json"));

/** Everything a KernelSymbols holds, comparable. */
function contents(k: KernelSymbols): unknown {
  return {
    symbols: k.symbols.map((s) => [s.name, s.address, s.type, s.block, s.size]),
    blocks: k.blocks.map((b) => [b.file, [...b.names].sort()]),
  };
}

describe("kept symbol lists", { skip: labReady ? false : "the lab kernel is not built" }, () => {
  let dir: string;
  let saved: string | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "kept-symbols-"));
    saved = process.env["KPATCH_TS_CACHE"];
    process.env["KPATCH_TS_CACHE"] = join(dir, "cache");
  });
  after(() => {
    if (saved === undefined) delete process.env["KPATCH_TS_CACHE"];
    else process.env["KPATCH_TS_CACHE"] = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  const wrap = (list: KernelSymbol[], blocks: SymbolBlock[]) => new KernelSymbols("kept", list, blocks);
  const open = (path: string) => {
    let made = 0;
    const elf = readElf(readFileSync(path), path);
    const k = keptSymbols(
      fileIdentity(path, statSync(path)),
      () => {
        made++;
        return KernelSymbols.fromElf(elf);
      },
      wrap,
    );
    return { k, made, elf };
  };

  test("the lab vmlinux: the kept list is fromElf's (names, addresses, types, blocks, sizes)", () => {
    const vmlinux = join(labBuild, "vmlinux");
    const first = open(vmlinux);
    const second = open(vmlinux);
    assert.equal(first.made, 1);
    assert.equal(second.made, 0, "the second open reads the kept list");
    assert.ok(second.k.size > 100000, `${second.k.size} symbols`);
    assert.deepEqual(contents(second.k), contents(KernelSymbols.fromElf(first.elf)));
  });

  test("a damaged kept file is made again; a touched object is another key", () => {
    const obj = join(dir, "base.o");
    copyFileSync(join(labBuild, "fs/proc/base.o"), obj);
    assert.equal(open(obj).made, 1);
    const kept = join(dir, "cache", "vmlinux-symbols");
    for (const f of readdirSync(kept)) {
      const text = readFileSync(join(kept, f), "utf8");
      writeFileSync(join(kept, f), text.replace(/"names":"./, '"names":"X'));
    }
    const again = open(obj);
    assert.equal(again.made, 1, "the damaged list is not used");
    assert.deepEqual(contents(again.k), contents(KernelSymbols.fromElf(again.elf)));
    assert.equal(open(obj).made, 0);
    utimesSync(obj, new Date(), new Date(Date.now() + 5000));
    assert.equal(open(obj).made, 1, "a touched file is asked again");
  });
});
