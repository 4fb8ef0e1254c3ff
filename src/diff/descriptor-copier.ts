/**
 * Copies the descriptors (special/dyndbg.ts) that included code and its special-section entries
 * refer to into sections of the same name in the output, each once, with their relocations, and
 * maps the references onto the copies.
 */
import type { ElfSection, ElfSymbol } from "../elf/index.js";
import { descriptorSizeProblem } from "./descriptors.js";
import { DiffError } from "./diff-error.js";
import type { OutputBuilder } from "./output-builder.js";
import type { RelocTarget } from "./reloc-target.js";
import { descriptorClass, NO_CLASS } from "./special/dyndbg.js";

export class DescriptorCopier {
  readonly b: OutputBuilder;
  /** Patched table → descriptor start → offset of its copy. */
  readonly copied = new Map<ElfSection, Map<number, number>>();

  constructor(b: OutputBuilder) {
    this.b = b;
  }

  /** The output symbol and addend for a reference to the descriptor `t`, copying it on first use. */
  map(t: Extract<RelocTarget, { kind: "entry" }>, owner: string): { symbol: ElfSymbol; addend: bigint } {
    if (t.start < 0) {
      throw new DiffError(
        "DIFF_BAD_ENTRY_SIZE",
        `Cannot copy the ${t.section.name} descriptor ${owner} uses: ${descriptorSizeProblem(t.section)}`,
        { file: this.b.ctx.patched.file.path, section: t.section.name, symbol: owner },
      );
    }
    const out = this.b.grownSection(t.section);
    let done = this.copied.get(t.section);
    if (!done) {
      done = new Map();
      this.copied.set(t.section, done);
    }
    let at = done.get(t.start);
    if (at === undefined) {
      at = out.data.length;
      const grown = new Uint8Array(at + t.size);
      grown.set(out.data);
      grown.set(t.section.data.subarray(t.start, t.start + t.size), at);
      out.data = grown;
      done.set(t.start, at);
      this.warnClass(t, owner);
      for (const r of this.b.ctx.relocsIn(t.section, t.start, t.start + t.size))
        this.b.addReloc(out, t.section, r, at + (r.offset - t.start), owner);
    }
    return { symbol: out.sectionSymbol!, addend: t.addend - BigInt(t.start) + BigInt(at) };
  }

  /**
   * A descriptor with a class (drm.debug-style categories) is enabled through its module's class
   * map, which stays with that module: the patch's copy only answers to the control file.
   */
  private warnClass(t: Extract<RelocTarget, { kind: "entry" }>, owner: string): void {
    const { ctx } = this.b;
    if (t.section.name !== "__dyndbg" || !ctx.patched.file.findSection("__dyndbg_classes")) return;
    const cls = descriptorClass(t.section.data, t.start);
    if (cls === NO_CLASS) return;
    ctx.warn(
      `${owner}: the dynamic debug site of class ${cls} is copied without its class map, which stays with ${ctx.target}: enable it through /proc/dynamic_debug/control, not the class parameter`,
    );
  }
}
