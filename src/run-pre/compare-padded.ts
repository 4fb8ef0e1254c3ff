/**
 * The comparison tolerant of alignment padding, tried when the exact one (compare-code.ts) finds
 * a difference. gcc pads loops and jump targets with multi-byte NOPs (`.p2align 6,,10`), and how
 * many depends on where the function sits relative to a 64-byte boundary: the object starts it at
 * offset 0 of its section, the kernel elsewhere. So the two may differ by NOP runs and by the
 * displacements of branches across them, and by nothing else:
 *
 * - NOP instructions (0x90, 66 90, 0f 1f /r, with 66/2e/3e prefixes) are dropped on both sides,
 *   except where ours has a site (site-kinds.ts): a site is compared, and allowed, as one piece at
 *   the kernel's offset, as the exact comparison does (the kernel's site may be a nop);
 * - every other instruction must be the same bytes, relocated fields masked, except an
 *   intra-function relative branch (jmp/jcc rel8/rel32, call rel32), whose target must be the same
 *   instruction on both sides once the NOPs are dropped; a rel8 on one side and rel32 on the
 *   other is allowed only when it is the same jmp, or jcc of the same condition, with the same
 *   prefixes (GNU as relaxes it to rel32 when padding pushes its target out of rel8's reach:
 *   relative-branch.ts), and counted as relaxed; anything else there is refused;
 * - a branch out of the function with no relocation in ours must be identical at the same
 *   offset, as today; past our last instruction the kernel may hold only padding.
 *
 * A site whose kernel form may be a nop can line up with more than one NOP of the kernel's; the
 * matcher tries each, backtracking (a bounded number of steps), and the first mismatch reported is
 * the one it got furthest to.
 */
import { type X86Instruction, x86Decoder } from "../x86/index.js";
import type { CodeComparison, Mismatch } from "./compare-code.js";
import type { FunctionCode, Site } from "./function-code.js";
import { readRel, relField, sameBranchRelaxed } from "./relative-branch.js";
import {
  type AllowedDifference,
  allowedAt,
  allowedDifference,
  type CompareMode,
  codeAfterEnd,
  isPadding,
  run,
  sameBytes,
  show,
  siteAt,
  type TheirCode,
} from "./site-forms.js";

/** One instruction of ours, or a site of several compared as one piece. */
interface Unit {
  offset: number;
  length: number;
  insn: X86Instruction;
  site?: Site;
  /** A NOP that is no site: alignment padding, dropped. */
  pad: boolean;
}

/** The kernel's code for the function, as far as it is known to reach. */
interface Region {
  code: TheirCode;
  /** Where the function ends, when known (exact size, or the next symbol). */
  end?: number;
  /** The address of code.bytes[0], when known (for where another function may start). */
  base?: bigint;
}

/** An intra-function branch of ours, its target to be checked once everything is lined up. */
interface Branch {
  ours: number;
  oursTarget: number;
  theirsAt: number;
  theirsTarget: number;
  /** rel8 on one side, rel32 on the other: the same jmp/jcc as the assembler relaxed it. */
  relaxed: boolean;
}

interface Failure {
  unit: number;
  mismatch: Mismatch;
}

const STEPS_PER_UNIT = 8;
/** The end of the reason for a rel8/rel32 pair that is no relaxation of one branch. */
const NOT_RELAXED = "not the same jmp/jcc relaxed by the assembler";

/**
 * A NOP, from its bytes (as the length decoder names one: 66/2e/3e prefixes, a REX without B,
 * then 90 or 0f 1f): no iced-x86 started for every other instruction of a large function.
 */
function isNopAt(code: Uint8Array, insn: X86Instruction): boolean {
  let k = insn.offset;
  const end = insn.offset + insn.length;
  while (k < end && (code[k] === 0x66 || code[k] === 0x2e || code[k] === 0x3e)) k++;
  const rex = code[k]! >= 0x40 && code[k]! <= 0x4f ? code[k++]! : 0;
  if (code[k] === 0x90) return k + 1 === end && !(rex & 1);
  return code[k] === 0x0f && code[k + 1] === 0x1f && !insn.invalid;
}

/** Ours, with its instructions as the exact comparison decoded them. */
export type DecodedCode = FunctionCode & { decoded: X86Instruction[] };

function unitsOf(ours: DecodedCode, mode: CompareMode): Unit[] {
  const size = ours.bytes.length;
  const units: Unit[] = [];
  let skipTo = 0;
  for (const insn of ours.decoded) {
    if (insn.offset < skipTo) continue;
    const site = siteAt(ours, insn.offset, mode);
    const length = site?.length && insn.offset + site.length <= size ? site.length : insn.length;
    skipTo = insn.offset + length;
    units.push({
      offset: insn.offset,
      length,
      insn,
      ...(site ? { site } : {}),
      pad: !site && isNopAt(ours.bytes, insn),
    });
  }
  return units;
}

/** The kernel's bytes from the function's start to its known end (our extent plus the tail). */
function regionOf(ours: FunctionCode, theirs: TheirCode): Region | undefined {
  if (theirs.size !== undefined)
    return theirs.size <= theirs.bytes.length ? { code: theirs, end: theirs.size } : undefined;
  if (!theirs.tail) return { code: theirs };
  const size = ours.bytes.length;
  const bytes = new Uint8Array(size + theirs.tail.length);
  bytes.set(theirs.bytes.subarray(0, size));
  bytes.set(theirs.tail, size);
  return { code: { bytes }, end: bytes.length, base: (theirs.tailAt ?? 0n) - BigInt(size) };
}

class PaddedMatcher {
  readonly units: Unit[];
  readonly theirs: X86Instruction[];
  readonly theirIndex = new Map<number, number>();
  readonly allowed: AllowedDifference[] = [];
  readonly branches: Branch[] = [];
  /** Per matched unit (by unit index): the kernel's offset of it. */
  readonly at = new Map<number, number>();
  deepest?: Failure;

  constructor(
    readonly ours: DecodedCode,
    readonly region: Region,
    readonly mode: CompareMode,
  ) {
    this.units = unitsOf(ours, mode);
    const b = region.code.bytes;
    this.theirs = x86Decoder().decodeRange(b, 0, region.end ?? b.length);
    for (const [k, i] of this.theirs.entries()) this.theirIndex.set(i.offset, k);
  }

  fail(unit: number, mismatch: Mismatch): undefined {
    if (!this.deepest || unit > this.deepest.unit) this.deepest = { unit, mismatch };
    return undefined;
  }

  theirText(at: number): string {
    const t = this.theirs[this.theirIndex.get(at) ?? -1];
    return t
      ? `${show(this.region.code.bytes, t)} at +0x${at.toString(16)}`
      : "(past the end of the kernel's code)";
  }

  mismatch(u: number, at: number, reason: string): undefined {
    const unit = this.units[u]!;
    const ours = show(this.ours.bytes, unit.insn);
    return this.fail(u, { offset: unit.offset, ours, theirs: this.theirText(at), reason });
  }

  /** Unit u against the kernel's instruction k: the index after what it covers, or undefined. */
  matchUnit(u: number, k: number): number | undefined {
    const unit = this.units[u]!;
    const t = this.theirs[k];
    if (!t) return this.mismatch(u, this.region.code.bytes.length, "different code");
    const at = t.offset;
    const endsAfter = (length: number) => {
      const after = this.theirIndex.get(at + length);
      const last = at + length === (this.region.end ?? this.region.code.bytes.length);
      return after ?? (last ? this.theirs.length : undefined);
    };
    const endsAt = endsAfter(unit.length);
    if (unit.site) return this.matchSite(u, unit.site, at, endsAt);
    const rel = relField(this.ours.bytes, unit.insn);
    const bytes = this.region.code.bytes;
    if (rel && !this.ours.linked[rel.offset]) {
      const theirRel = relField(bytes, t);
      const target = rel.offset + rel.size + readRel(this.ours.bytes, rel);
      const inside = target >= 0 && target <= this.ours.bytes.length;
      const relaxed = !!theirRel && theirRel.size !== rel.size;
      if (
        relaxed &&
        !sameBranchRelaxed(
          { code: this.ours.bytes, insn: unit.insn, rel },
          { code: bytes, insn: t, rel: theirRel },
        )
      )
        return this.mismatch(
          u,
          at,
          `different code: ${rel.size === 1 ? "rel8" : "rel32"} here, rel${theirRel.size * 8} in the kernel, ${NOT_RELAXED}`,
        );
      if (inside && theirRel && (relaxed || t.length === unit.length)) {
        const head = rel.offset - unit.offset;
        if (!relaxed && !sameBytes(this.ours, this.region.code, unit.offset, at, head))
          return this.mismatch(u, at, "different code");
        const theirsTarget = theirRel.offset + theirRel.size + readRel(bytes, theirRel);
        this.branches.push({ ours: unit.offset, oursTarget: target, theirsAt: at, theirsTarget, relaxed });
        return endsAfter(t.length);
      }
      if (!inside && at !== unit.offset)
        return this.mismatch(
          u,
          at,
          "a branch out of the function that no relocation fills in, moved by alignment padding",
        );
    }
    if (t.length !== unit.length || !sameBytes(this.ours, this.region.code, unit.offset, at, unit.length))
      return this.mismatch(u, at, "different code");
    return endsAt;
  }

  matchSite(u: number, site: Site, at: number, endsAt: number | undefined): number | undefined {
    const unit = this.units[u]!;
    const code = this.region.code;
    if (endsAt !== undefined && sameBytes(this.ours, code, unit.offset, at, unit.length)) return endsAt;
    const their = run(code.bytes, at, unit.length);
    if (
      endsAt === undefined ||
      !allowedAt(site.kind, unit.insn, their, { ours: this.ours, theirs: code, at })
    )
      return this.mismatch(u, at, `a ${site.kind} site (${site.evidence}) in a form no rewrite produces`);
    this.allowed.push(
      allowedDifference(unit.offset, site, {
        ours: () => show(this.ours.bytes, unit.insn),
        theirs: () => their!.map((i) => show(code.bytes, i)).join("; "),
      }),
    );
    return endsAt;
  }

  /** The kernel's instructions unit u may line up with from k: its NOPs (a site only), then the next other. */
  candidates(u: number, k: number): number[] {
    const out: number[] = [];
    for (; k < this.theirs.length; k++) {
      out.push(k);
      if (!isNopAt(this.region.code.bytes, this.theirs[k]!)) break;
    }
    if (out.length === 0) out.push(k);
    const last = out[out.length - 1]!;
    return this.units[u]!.site ? [last, ...out.slice(0, -1).reverse()] : [last];
  }

  /** Every unit lined up with the kernel's code, or undefined (this.deepest says why). */
  lineUp(): number | undefined {
    type Choice = { u: number; rest: number[]; allowed: number; branches: number };
    const stack: Choice[] = [];
    let budget = STEPS_PER_UNIT * (this.units.length + 1);
    let u = 0;
    let k = 0;
    let rest: number[] | undefined;
    while (u < this.units.length) {
      if (this.units[u]!.pad) {
        u++;
        continue;
      }
      if (budget-- <= 0) return this.fail(this.units.length, this.tooHard());
      const tries = rest ?? this.candidates(u, k);
      rest = undefined;
      let next: number | undefined;
      const mark = { allowed: this.allowed.length, branches: this.branches.length };
      while (tries.length && next === undefined) {
        const c = tries.shift()!;
        next = this.matchUnit(u, c);
        if (next !== undefined) {
          this.at.set(u, this.theirs[c]!.offset);
          if (tries.length) stack.push({ u, rest: tries, ...mark });
        }
      }
      if (next !== undefined) {
        k = next;
        u++;
        continue;
      }
      const back = stack.pop();
      if (!back) return undefined;
      this.allowed.length = back.allowed;
      this.branches.length = back.branches;
      for (const key of this.at.keys()) if (key >= back.u) this.at.delete(key);
      u = back.u;
      rest = back.rest;
    }
    return k;
  }

  tooHard(): Mismatch {
    return {
      offset: 0,
      ours: `${this.units.length} instructions`,
      theirs: `${this.theirs.length} instructions`,
      reason: "cannot tell whether they differ only by alignment padding (too many ways to line them up)",
    };
  }
}

/** The unit a branch target of ours lands on, padding skipped; units.length for the end. */
function oursUnitAt(units: Unit[], starts: Map<number, number>, target: number): number | undefined {
  let u =
    starts.get(target) ?? (target === units.at(-1)!.offset + units.at(-1)!.length ? units.length : undefined);
  while (u !== undefined && u < units.length && units[u]!.pad) u++;
  return u;
}

/** The unit a branch target of the kernel's lands on, its NOPs skipped; units.length past the last. */
function theirUnitAt(
  m: PaddedMatcher,
  byOffset: Map<number, number>,
  target: number,
  end: number,
): number | undefined {
  let k = m.theirIndex.get(target) ?? (target === end ? m.theirs.length : undefined);
  while (k !== undefined && k < m.theirs.length) {
    const t = m.theirs[k]!;
    const u = byOffset.get(t.offset);
    if (u !== undefined) return u;
    if (t.offset >= end) return m.units.length;
    if (!isNopAt(m.region.code.bytes, t)) return undefined;
    k++;
  }
  return k === undefined ? undefined : m.units.length;
}

/** The first branch whose targets are not the same instruction on both sides. */
function wrongBranch(m: PaddedMatcher, end: number): Branch | undefined {
  const starts = new Map(m.units.map((u, i) => [u.offset, i]));
  const byOffset = new Map([...m.at].map(([u, at]) => [at, u]));
  return m.branches.find((b) => {
    const ours = oursUnitAt(m.units, starts, b.oursTarget);
    return ours === undefined || ours !== theirUnitAt(m, byOffset, b.theirsTarget, end);
  });
}

/** NOP bytes in the gaps before each matched unit, ours against the kernel's. */
function paddingBytes(m: PaddedMatcher): number {
  let total = 0;
  let oursEnd = 0;
  let theirsEnd = 0;
  for (const [u, at] of [...m.at].sort((a, b) => a[0] - b[0])) {
    const unit = m.units[u]!;
    // A relaxed branch is longer on one side: the kernel's instruction's own length, not ours.
    const theirLength = unit.site ? unit.length : m.theirs[m.theirIndex.get(at)!]!.length;
    total += Math.abs(unit.offset - oursEnd - (at - theirsEnd));
    oursEnd = unit.offset + unit.length;
    theirsEnd = at + theirLength;
  }
  return total;
}

/**
 * The kernel's code past our last instruction that continues its function: anything but padding
 * before its known end (an exact size), or before another function may start (kallsyms' extent).
 */
function codeAfter(m: PaddedMatcher, region: Region, endAt: number): X86Instruction | undefined {
  const from = m.theirs[endAt]!.offset;
  if (region.base !== undefined) return codeAfterEnd(region.code.bytes, from, region.end!, region.base);
  return m.theirs.slice(endAt).find((i) => !isPadding(i));
}

/**
 * The comparison modulo alignment padding, after the exact one found `exact.mismatch`: a match
 * (with how much padding differed), or the first mismatch that padding does not explain (the
 * exact one when the tolerant one gets no further).
 */
export function comparePadded(
  ours: DecodedCode,
  theirs: TheirCode,
  mode: CompareMode,
  exact: CodeComparison,
): CodeComparison {
  const region = regionOf(ours, theirs);
  if (!region || ours.bytes.length === 0) return exact;
  const m = new PaddedMatcher(ours, region, mode);
  const endAt = m.lineUp();
  const shifted = () => paddingBytes(m) > 0;
  if (endAt === undefined) {
    const failure = m.deepest!;
    const further = failure.mismatch.offset > exact.mismatch!.offset;
    return further || failure.mismatch.reason.endsWith(NOT_RELAXED)
      ? { allowed: m.allowed, mismatch: failure.mismatch }
      : exact;
  }
  const end = m.theirs[endAt]?.offset ?? region.end ?? region.code.bytes.length;
  const extra = region.end !== undefined && end < region.end ? codeAfter(m, region, endAt) : undefined;
  if (extra) {
    if (!shifted()) return exact;
    const mismatch = {
      offset: ours.bytes.length,
      ours: "(end of function)",
      theirs: m.theirText(extra.offset),
      reason: "the kernel's function is longer",
    };
    return { allowed: m.allowed, mismatch };
  }
  const wrong = wrongBranch(m, end);
  if (wrong) {
    const unit = m.units.find((x) => x.offset === wrong.ours)!;
    const mismatch = {
      offset: unit.offset,
      ours: show(ours.bytes, unit.insn),
      theirs: m.theirText(wrong.theirsAt),
      reason:
        "different code: the branch's target is another instruction once alignment padding is taken out",
    };
    return { allowed: m.allowed, mismatch };
  }
  const bytes = paddingBytes(m);
  const branches = m.branches.filter(
    (b) => !b.relaxed && b.theirsTarget - b.theirsAt !== b.oursTarget - b.ours,
  ).length;
  const relaxed = m.branches.filter((b) => b.relaxed).length;
  return { allowed: m.allowed, padding: { bytes, branches, relaxed } };
}
