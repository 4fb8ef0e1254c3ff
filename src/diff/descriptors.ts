/**
 * Descriptor tables (special/dyndbg.ts): fixed-size descriptors that code refers to. Cut by the
 * size of the descriptors' own symbols (every one of them must have it, at a multiple of it);
 * two references land on the same descriptor when they land at the same offset of descriptors
 * with the same bytes (the line field aside) and relocations to the same targets.
 */
import { type ElfReloc, type ElfSection, STT_OBJECT } from "../elf/index.js";
import type { DiffContext } from "./context.js";
import type { ObjectIndex } from "./object-index.js";
import type { DescriptorKind } from "./special/special-kind.js";

const sizes = new WeakMap<ElfSection, number | null>();

/** The descriptor size of `sec`, from its symbols; undefined when they do not tell one size. */
export function descriptorSize(sec: ElfSection): number | undefined {
  let size = sizes.get(sec);
  if (size === undefined) {
    size = null;
    const file = sec.file;
    const syms = file ? file.symbols.filter((s) => s.section === sec && s.type === STT_OBJECT) : [];
    const first = syms[0] ? Number(syms[0].size) : 0;
    if (
      first > 0 &&
      sec.size % first === 0 &&
      syms.every((s) => Number(s.size) === first && Number(s.value) % first === 0)
    )
      size = first;
    sizes.set(sec, size);
  }
  return size ?? undefined;
}

/** Why `sec` cannot be cut into descriptors, for refusals. */
export function descriptorSizeProblem(sec: ElfSection): string {
  return `the sizes of its descriptors' symbols do not give one entry size dividing the section (${sec.size} bytes)`;
}

/**
 * True when the descriptors at `startO` of `o` (original) and `startP` of `p` (patched), both of
 * `size` bytes, describe the same site: equal bytes outside the line field, relocations at the
 * same offsets to the same targets.
 */
export function sameDescriptor(
  ctx: DiffContext,
  kind: DescriptorKind,
  o: ElfSection,
  startO: number,
  p: ElfSection,
  startP: number,
  size: number,
  sameReloc: (o: ElfSection, ro: ElfReloc, p: ElfSection, rp: ElfReloc) => boolean,
): boolean {
  const a = o.data.subarray(startO, startO + size);
  const b = p.data.subarray(startP, startP + size);
  for (let i = 0; i < size; i++) {
    if (a[i] === b[i]) continue;
    if (!kind.line || !inLineField(kind.line, i, a, b)) return false;
  }
  const ro = ctx.relocsIn(o, startO, startO + size);
  const rp = ctx.relocsIn(p, startP, startP + size);
  if (ro.length !== rp.length) return false;
  return ro.every((r, i) => r.offset - startO === rp[i]!.offset - startP && sameReloc(o, r, p, rp[i]!));
}

/** True when byte `i` lies in the line field and the two words differ only in its bits. */
function inLineField(
  line: { offset: number; bits: number },
  i: number,
  a: Uint8Array,
  b: Uint8Array,
): boolean {
  if (i < line.offset || i >= line.offset + 4) return false;
  const word = (d: Uint8Array) => new DataView(d.buffer, d.byteOffset + line.offset, 4).getUint32(0, true);
  const mask = ~((1 << line.bits) - 1) >>> 0;
  return (word(a) & mask) >>> 0 === (word(b) & mask) >>> 0;
}

/** The descriptor kind of a section of `index`, if it is a descriptor table. */
export function descriptorKindOf(index: ObjectIndex, sec: ElfSection): DescriptorKind | undefined {
  const info = index.info.get(sec);
  return info?.kind === "descriptors" ? info.descriptors : undefined;
}
