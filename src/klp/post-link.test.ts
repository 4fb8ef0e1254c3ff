/**
 * Post-link over real objects: a C file compiled with gcc and linked with `ld -r` (as kbuild
 * links a module's objects), whose undefined symbols get the names the differ gives them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  type ElfFile,
  readElf,
  SHF_ALLOC,
  SHF_INFO_LINK,
  SHF_RELA_LIVEPATCH,
  SHN_LIVEPATCH,
  SHN_UNDEF,
  writeElf,
} from "../elf/index.js";
import { isKpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import { klpRelaSectionName, klpSymbolName } from "./format.js";
import { convertKlpRelocations } from "./post-link.js";

const dir = mkdtempSync(join(tmpdir(), "kpatch-postlink-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SOURCE = `
extern char saved_command_line[];
extern int helper_in_module(int);
extern int exported_thing(void);
int new_show(void) { return saved_command_line[0] + helper_in_module(3) + exported_thing(); }
int *new_data_ref(void) { extern int local_counter; return &local_counter; }
`;

/** `src` compiled with gcc and linked with ld -r, as the module build does; read back. */
async function linked(name: string, src: string): Promise<ElfFile> {
  const c = join(dir, `${name}.c`);
  const o = join(dir, `${name}.o`);
  const ko = join(dir, `${name}.ko`);
  writeFileSync(c, src);
  await execCheck("gcc", ["-O2", "-fno-pic", "-mcmodel=kernel", "-ffunction-sections", "-c", "-o", o, c]);
  await execCheck("ld", ["-r", "-o", ko, o]);
  return readElf(readFileSync(ko), ko);
}

/** Gives undefined symbols the names the differ gives what only livepatch can resolve. */
function nameKlp(file: ElfFile, names: Record<string, string>): void {
  for (const [from, to] of Object.entries(names)) {
    const sym = file.findSymbol(from);
    assert.ok(sym?.isUndefined, `${from} is undefined in the object`);
    sym.name = to;
  }
}

test("convertKlpRelocations() moves klp references into .klp.rela sections and marks their symbols", async () => {
  const ko = await linked("show", SOURCE);
  const cmdline = klpSymbolName("vmlinux", "saved_command_line", 0);
  const counter = klpSymbolName("vmlinux", "local_counter", 2);
  const helper = klpSymbolName("some_mod", "helper_in_module", 0);
  nameKlp(ko, { saved_command_line: cmdline, local_counter: counter, helper_in_module: helper });
  const before = ko.sections.flatMap((s) => (s.base && !(s.flags & SHF_RELA_LIVEPATCH) ? s.relocs : []));

  const stats = convertKlpRelocations(ko);
  assert.deepEqual(stats, { klpRelocs: 3, klpSymbols: 3, klpSections: 3 });

  // Written and read back, the way the kernel's module loader will see it.
  const back = readElf(writeElf(ko), "show.ko");
  for (const name of [cmdline, counter, helper]) {
    const sym = back.lookupSymbol(name);
    assert.equal(sym.shndx, SHN_LIVEPATCH, `${name} is SHN_LIVEPATCH`);
  }
  const exported = back.lookupSymbol("exported_thing");
  assert.equal(exported.shndx, SHN_UNDEF, "an exported symbol stays for the module loader");

  const want = [
    klpRelaSectionName("vmlinux", ".text.new_show"),
    klpRelaSectionName("some_mod", ".text.new_show"),
    klpRelaSectionName("vmlinux", ".text.new_data_ref"),
  ];
  const klpSections = back.sections.filter((s) => s.flags & SHF_RELA_LIVEPATCH);
  assert.deepEqual(klpSections.map((s) => s.name).sort(), [...want].sort());
  for (const s of klpSections) {
    assert.equal(s.flags & (SHF_ALLOC | SHF_INFO_LINK), SHF_ALLOC | SHF_INFO_LINK, `${s.name} flags`);
    assert.equal(
      s.base?.name,
      s.name.replace(/^\.klp\.rela\.[^.]+\./, ""),
      `${s.name} applies to its section`,
    );
    for (const r of s.relocs) assert.equal(r.symbol.shndx, SHN_LIVEPATCH);
  }
  // Nothing is lost: every relocation is in exactly one place; ordinary ones stay ordinary.
  const after = back.sections.flatMap((s) => (s.base ? s.relocs : []));
  assert.equal(after.length, before.length);
  const ordinary = back.sections.filter((s) => s.base && !(s.flags & SHF_RELA_LIVEPATCH));
  for (const s of ordinary) for (const r of s.relocs) assert.notEqual(r.symbol.shndx, SHN_LIVEPATCH);
  // .rela.text.new_data_ref held only the klp reference: the emptied section is gone.
  assert.equal(back.findSection(".rela.text.new_data_ref"), undefined);

  // binutils reads the result (the klp sections and symbols are plain ELF to it).
  const path = join(dir, "show-out.ko");
  writeFileSync(path, writeElf(ko));
  const r = await execCheck("readelf", ["-S", "-r", "-W", path]);
  for (const name of want) assert.match(r.stdout, new RegExp(name.replace(/\./g, "\\.")));
  assert.doesNotMatch(r.stderr, /warning|error/i);
});

test("convertKlpRelocations() refuses a .klp.sym name it cannot read", async () => {
  const ko = await linked("bad", SOURCE);
  nameKlp(ko, { saved_command_line: ".klp.sym.vmlinux.saved_command_line" });
  assert.throws(
    () => convertKlpRelocations(ko),
    (e: unknown) => isKpatchError(e) && e.code === "KLP_BAD_SYMBOL" && e.location.symbol !== undefined,
  );
});

test("convertKlpRelocations() refuses a klp reference from a section that is not loaded", async () => {
  const src = `extern char saved_command_line[];
asm(".section .kpatch_test_nonalloc,\\"\\",@progbits\\n.quad saved_command_line\\n.previous");
int keep(void) { return 0; }
`;
  const ko = await linked("nonalloc", src);
  nameKlp(ko, { saved_command_line: klpSymbolName("vmlinux", "saved_command_line", 0) });
  assert.throws(
    () => convertKlpRelocations(ko),
    (e: unknown) =>
      isKpatchError(e) && e.code === "KLP_RELOC_NOT_ALLOC" && e.location.section === ".kpatch_test_nonalloc",
  );
});
