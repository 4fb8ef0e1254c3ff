/**
 * KernelImage on real kernels: the lab kernel's bzImage (whose build tree has the System.map to
 * check the kallsyms parse against, symbol for symbol) and Debian's stock 6.12 and 6.1 images
 * (when their packages are in the cache: fetchDebianPackage puts them there).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { findDebianPackage } from "../debian/debian-package.js";
import { currentLabLink } from "../lab/paths.js";
import { isKpatchError } from "../util/errors.js";
import { extractVmlinux, findPayloads } from "./extract-vmlinux.js";
import { findKallsymsTables } from "./kallsyms-tables.js";
import { KernelImage } from "./kernel-image.js";
import { type KernelSymbol, KernelSymbols } from "./kernel-symbols.js";

const labBuild = join(currentLabLink("6.12"), "build");
const labReady = existsSync(join(currentLabLink("6.12"), "ready.json"));

test("extractVmlinux() names a file that is no kernel image", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kimage-"));
  try {
    const junk = join(dir, "junk");
    writeFileSync(junk, Buffer.alloc(4096, 0x41));
    await assert.rejects(extractVmlinux(junk), (e) => isKpatchError(e) && e.code === "KIMAGE_NO_VMLINUX");
    await assert.rejects(
      extractVmlinux(join(dir, "missing")),
      (e) => isKpatchError(e) && e.code === "KIMAGE_NOT_FOUND" && e.message.includes("missing"),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("the lab kernel's bzImage", { skip: labReady ? false : "the lab kernel is not built" }, () => {
  test("its payload is found through the boot header and its vmlinux has no symbol table", async () => {
    const bz = readFileSync(join(labBuild, "arch/x86/boot/bzImage"));
    const payloads = findPayloads(bz);
    assert.equal(payloads.length, 1);
    const image = await KernelImage.open(join(labBuild, "arch/x86/boot/bzImage"));
    assert.equal(image.hasSymtab, false);
  });

  test("its kallsyms tables give System.map's symbols, address for address, with the same sympos", async () => {
    const image = await KernelImage.open(join(labBuild, "arch/x86/boot/bzImage"));
    const fromImage = image.symbols();
    const map = KernelSymbols.fromSystemMap(readFileSync(join(labBuild, "System.map"), "utf8"));
    assert.equal(fromImage.size, map.size);
    // Both are in address order; symbols at one address are ordered by other rules (kallsyms
    // prefers globals, nm sorts by name), so compare them as sets per address.
    const key = (s: KernelSymbol): string => `${s.address.toString(16)} ${s.name}`;
    const ours = fromImage.symbols.map(key);
    assert.deepEqual([...ours].sort(), map.symbols.map(key).sort());
    for (let i = 1; i < ours.length; i++) {
      assert.ok(fromImage.symbols[i - 1]!.address <= fromImage.symbols[i]!.address, `address order at ${i}`);
    }
    const types = new Map(map.symbols.map((s) => [key(s), s.type]));
    let percpu = 0;
    for (const a of fromImage.symbols) {
      const type = types.get(key(a))!;
      // --absolute-percpu: kallsyms types per-CPU variables 'A' where nm says d/D.
      if (a.type !== type) {
        assert.ok(
          a.type === "A" && "dD".includes(type) && a.address < 0x100000n,
          `${a.name}: ${a.type} ${type}`,
        );
        percpu++;
      }
    }
    assert.ok(percpu > 0 && percpu < 1000, `${percpu} per-CPU symbols`);
    for (const name of map.names()) {
      const same = (k: KernelSymbols): string =>
        k
          .named(name)
          .map((s) => `${s.address}/${k.sympos(s)}`)
          .join();
      assert.equal(same(fromImage), same(map), `sympos of ${name}`);
    }
  });

  test("bytes at a function's address are the built vmlinux's, and the seal list matches it", async () => {
    const image = await KernelImage.open(join(labBuild, "arch/x86/boot/bzImage"));
    const built = KernelImage.fromVmlinux(join(labBuild, "vmlinux"));
    assert.equal(built.hasSymtab, true);
    const syms = image.symbols();
    for (const name of ["schedule", "cmdline_proc_show", "klp_enable_patch"]) {
      const sym = syms.lookup(name);
      const size = Number(syms.extent(sym));
      assert.deepEqual(image.bytesAt(sym.address, size), built.bytesAt(sym.address, size), name);
    }
    assert.deepEqual(image.endbrSeal(), built.endbrSeal());
  });
});

// The stock images npm test sets up (kpatch-lab setup --distro 6.12 and --distro 6.1).
const STOCK = [
  {
    name: "linux-image-6.12.118+deb12-amd64-unsigned",
    version: "6.12.118-1~deb12u1",
    order: "6.2+",
    ibt: true,
  },
  { name: "linux-image-6.1.0-57-amd64-unsigned", version: "6.1.192-3", order: "6.1", ibt: false },
] as const;

for (const stock of STOCK) {
  const pkg = findDebianPackage(stock.name, stock.version);
  const kver = stock.name.replace(/^linux-image-/, "").replace(/-unsigned$/, "");
  describe(`Debian's ${kver} image`, { skip: pkg ? false : `${stock.name} is not in the cache` }, () => {
    test("its kallsyms tables are found and every text symbol points at code in the image", async () => {
      const image = await KernelImage.open(join(pkg!.root, "boot", `vmlinuz-${kver}`));
      const rodata = image.elf.sections.find((s) => s.name === ".rodata")!;
      const layout = findKallsymsTables(rodata.data);
      assert.equal(layout?.order, stock.order);
      assert.equal(layout?.absolutePercpu, true);
      const syms = image.symbols();
      assert.ok(syms.size > 90_000, `${syms.size} symbols`);
      let text = 0;
      let outside = 0;
      for (const s of syms.symbols) {
        if (s.type !== "t" && s.type !== "T") continue;
        text++;
        if (!image.bytesAt(s.address, 1)) outside++;
      }
      // A few text labels sit at the very end of .text (_etext and its like).
      assert.ok(outside < 10, `${outside} of ${text} text symbols outside the image's sections`);
      // Every function the kernel's own livepatch code needs, once.
      for (const name of ["klp_enable_patch", "kallsyms_on_each_symbol", "ftrace_set_filter_ip"]) {
        assert.equal(syms.named(name).length, 1, name);
      }
    });

    test(stock.ibt ? "its sealed endbr64 are function entries" : "it has no seal list (no IBT)", async () => {
      const image = await KernelImage.open(join(pkg!.root, "boot", `vmlinuz-${kver}`));
      const seal = image.endbrSeal();
      if (!stock.ibt) return assert.equal(seal, undefined);
      assert.ok(seal && seal.size > 1000, `${seal?.size} sealed`);
      const starts = new Set(image.symbols().symbols.map((s) => s.address));
      for (const at of seal) {
        assert.ok(starts.has(at), `sealed 0x${at.toString(16)} starts a symbol`);
        assert.deepEqual([...image.bytesAt(at, 4)!], [0xf3, 0x0f, 0x1e, 0xfa], "endbr64");
      }
    });
  });
}
