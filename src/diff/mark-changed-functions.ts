/**
 * markChangedFunctions(): compare every patched function with its twin, byte by byte and
 * relocation by relocation (by what relocations point to, not where), and mark it same, changed
 * (with the first differing offset and the instruction there) or new. A changed immediate that
 * only carries a moved __LINE__ into a line-bearing call (might_sleep(), ...) is not a change, nor
 * is __init code whose references only moved (moved-references.ts).
 * The change of a function the author ignored (KPATCH_IGNORE_FUNCTION, KPATCH_IGNORE_SECTION)
 * leaves it "same".
 */
import type { ElfReloc } from "../elf/index.js";
import { findInstructionAt, type X86Instruction, x86Decoder } from "../x86/index.js";
import type { ChangeWhy, DiffContext } from "./context.js";
import { ignoresChange } from "./directives.js";
import { onlyMovedReferences } from "./moved-references.js";
import type { Unit } from "./object-index.js";
import { ARGUMENT_REGISTERS, LINE_CALL_WINDOW, LINE_MACRO_CALLEES, MAX_LINE_NUMBER } from "./policy.js";
import { describeTarget, resolveRelocTarget, sameRelocTarget } from "./reloc-target.js";
import { sameButSourceLocation } from "./ubsan-locations.js";

const INIT_MOVED =
  "__init code that differs only in where anonymous data it refers to sits (UBSAN data renumbered, a piece or string moved): not a change";

const LINE_ONLY = "only source line numbers changed (a moved line, not a change)";

const LINE_CALLEES = new Map(LINE_MACRO_CALLEES.map((c) => [c.name, c]));

export function markChangedFunctions(ctx: DiffContext): void {
  for (const p of ctx.patched.functions) markFunction(ctx, p);
  markParentsOfChangedParts(ctx);
  // A changed parent takes its children along (they are reached only through it).
  for (const p of ctx.patched.functions) {
    if (p.parent && ctx.status.get(p.parent) !== "same" && ctx.status.get(p) === "same")
      ctx.status.set(p, "changed");
  }
  forgetLinesOfPatched(ctx);
}

/** A moved line is no longer worth reporting in a function patched anyway (with its parent or part). */
function forgetLinesOfPatched(ctx: DiffContext): void {
  for (const p of ctx.patched.functions) {
    if (ctx.status.get(p) !== "same" && ctx.ignored.get(p.sym.name)?.startsWith(LINE_ONLY))
      ctx.ignored.delete(p.sym.name);
  }
}

/** A patched function is new (no twin), changed (with why) or the same. */
function markFunction(ctx: DiffContext, p: Unit): void {
  const twin = ctx.twinOf(p.sym);
  const o = twin ? ctx.orig.unitOf.get(twin) : undefined;
  if (!o) {
    ctx.status.set(p, "new");
    return;
  }
  let why = compareUnits(ctx, o, p);
  if (typeof why === "string") {
    ctx.ignored.set(p.sym.name, why);
    why = undefined;
  }
  if (why && ctx.patched.info.get(p.section)?.kind === "init" && onlyMovedReferences(ctx, o, p)) {
    ctx.ignored.set(p.sym.name, INIT_MOVED);
    why = undefined;
  }
  if (why && ignoresChange(ctx, p)) why = undefined;
  ctx.status.set(p, why ? "changed" : "same");
  if (why) ctx.why.set(p, why);
}

/** A function whose .cold part changed, appeared or went away has changed too. */
function markParentsOfChangedParts(ctx: DiffContext): void {
  const markChanged = (parent: Unit, detail: string) => {
    if (ctx.status.get(parent) !== "same" || ignoresChange(ctx, parent)) return;
    ctx.status.set(parent, "changed");
    ctx.why.set(parent, { offset: 0, instruction: "", detail });
  };
  for (const p of ctx.patched.functions) {
    if (!p.parent || ctx.status.get(p) === "same") continue;
    markChanged(
      p.parent,
      `its split-out part ${p.sym.name} ${ctx.status.get(p) === "new" ? "is new" : "changed"}`,
    );
  }
  for (const o of ctx.orig.functions) {
    if (!o.parent || ctx.twinOf(o.sym)) continue;
    const parentTwin = ctx.twinOf(o.parent.sym);
    const parent = parentTwin ? ctx.patched.unitOf.get(parentTwin) : undefined;
    if (parent) markChanged(parent, `its split-out part ${o.sym.name} is gone`);
  }
}

/**
 * Undefined when the units are the same; why a difference is none (only moved line numbers);
 * else where they first differ.
 */
function compareUnits(ctx: DiffContext, o: Unit, p: Unit): ChangeWhy | string | undefined {
  const entryO = Number(o.sym.value);
  const entryP = Number(p.sym.value);
  // Compare from the entry: the padding before it is NOPs whose length may differ.
  const padO = entryO - o.start;
  const padP = entryP - p.start;
  const lenO = o.end - entryO;
  const lenP = p.end - entryP;
  const bytesO = o.section.data.subarray(entryO, o.end);
  const bytesP = p.section.data.subarray(entryP, p.end);
  const relocsO = ctx.relocsIn(o.section, entryO - Math.min(padO, padP), o.end);
  const relocsP = ctx.relocsIn(p.section, entryP - Math.min(padO, padP), p.end);

  const {
    at: relocDiff,
    detail: relocDetail,
    movedChecks,
  } = firstRelocDifference(ctx, o, p, {
    relocsO,
    relocsP,
  });
  if (o.sym.type !== p.sym.type) return { offset: 0, instruction: "", detail: "the symbol type changed" };

  const diffs = byteDiffs(bytesO, bytesP);
  const firstByte = diffs[0] ?? (lenO !== lenP ? Math.min(lenO, lenP) : Number.POSITIVE_INFINITY);
  if (relocDiff === Number.POSITIVE_INFINITY && lenO === lenP) {
    const ubsan = movedChecks > 0 ? [`the source line of ${movedChecks} UBSAN check(s)`] : [];
    if (diffs.length === 0) return ubsan.length > 0 ? `${LINE_ONLY}: ${ubsan[0]}` : undefined;
    const fed = onlyLineNumbers(ctx, o, p, diffs);
    if (fed) return `${LINE_ONLY}: ${[...ubsan, `passed to ${fed.join(", ")}`].join("; ")}`;
  }
  const at = Math.min(firstByte, relocDiff);
  let detail: string;
  if (at === relocDiff && relocDiff <= firstByte) detail = relocDetail;
  else if (lenO !== lenP && at >= Math.min(lenO, lenP))
    detail = `size 0x${lenO.toString(16)} -> 0x${lenP.toString(16)}`;
  else detail = "instruction bytes differ";
  if (lenO !== lenP && !detail.includes("size"))
    detail += `; size 0x${lenO.toString(16)} -> 0x${lenP.toString(16)}`;
  return lazyWhy(o, p, at, detail);
}

/**
 * Where the two units' relocations first differ (at and detail; at is +Infinity when they do not),
 * and how many only moved a UBSAN check's source line.
 */
function firstRelocDifference(
  ctx: DiffContext,
  o: Unit,
  p: Unit,
  relocs: { relocsO: readonly ElfReloc[]; relocsP: readonly ElfReloc[] },
): { at: number; detail: string; movedChecks: number } {
  const { relocsO, relocsP } = relocs;
  const entryO = Number(o.sym.value);
  const entryP = Number(p.sym.value);
  let movedChecks = 0;
  const n = Math.max(relocsO.length, relocsP.length);
  for (let i = 0; i < n; i++) {
    const ro = relocsO[i];
    const rp = relocsP[i];
    const sameOffset = ro && rp && ro.offset - entryO === rp.offset - entryP;
    if (sameOffset && sameRelocTarget(ctx, o.section, ro, p.section, rp)) continue;
    if (sameOffset && sameButSourceLocation(ctx, o.section, ro, p.section, rp)) {
      movedChecks++;
      continue;
    }
    const at = Math.min(
      ro ? ro.offset - entryO : Number.POSITIVE_INFINITY,
      rp ? rp.offset - entryP : Number.POSITIVE_INFINITY,
    );
    return { at, detail: relocText(ctx, o, ro, p, rp), movedChecks };
  }
  return { at: Number.POSITIVE_INFINITY, detail: "", movedChecks };
}

/**
 * The why of a change, its instruction fields decoded only when read (a report printed as text or
 * JSON): the x86 decoder costs more to start than a small diff takes.
 */
function lazyWhy(o: Unit, p: Unit, at: number, detail: string): ChangeWhy {
  let decoded: { offset: number; instruction: string; originalInstruction?: string } | undefined;
  const get = () => {
    if (decoded) return decoded;
    const entryP = Number(p.sym.value);
    const insnP = instructionAt(p, entryP + at);
    const insnO = instructionAt(o, Number(o.sym.value) + at);
    decoded = { offset: insnP ? insnP.offset - entryP : at, instruction: insnP?.text ?? "" };
    if (insnO) decoded.originalInstruction = insnO.text;
    return decoded;
  };
  const why = {} as ChangeWhy;
  Object.defineProperties(why, {
    offset: { enumerable: true, get: () => get().offset },
    instruction: { enumerable: true, get: () => get().instruction },
    originalInstruction: { enumerable: true, get: () => get().originalInstruction },
  });
  why.detail = detail;
  return why;
}

function relocText(
  ctx: DiffContext,
  o: Unit,
  ro: ElfReloc | undefined,
  p: Unit,
  rp: ElfReloc | undefined,
): string {
  const show = (u: Unit, r: ElfReloc | undefined, index: typeof ctx.orig) =>
    r ? describeTarget(resolveRelocTarget(index, u.section, r)) : "nothing";
  const a = show(o, ro, ctx.orig);
  const b = show(p, rp, ctx.patched);
  if (a !== b || !ro || !rp) return `reference to ${a} became ${b}`;
  // The same name, another symbol: a global made static (or the reverse), or a renumbered local.
  const bind = (r: ElfReloc) => (r.symbol.isLocal ? "local" : "global");
  return `reference to ${a} (${bind(ro)}) became another symbol of that name (${bind(rp)})`;
}

function byteDiffs(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  const n = Math.min(a.length, b.length);
  if (
    n === a.length &&
    n === b.length &&
    Buffer.from(a.buffer, a.byteOffset, n).equals(Buffer.from(b.buffer, b.byteOffset, n))
  ) {
    return out;
  }
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

function instructionAt(u: Unit, offset: number): X86Instruction | undefined {
  if (offset >= u.end) return undefined;
  return findInstructionAt(u.section.data, Number(u.sym.value), u.end, offset);
}

/**
 * The line-bearing callees when every differing byte lies in the immediate of a `mov $imm, %reg`
 * whose old and new values can both be line numbers, into the register of the line argument of
 * the call that follows within a few instructions; else undefined.
 */
function onlyLineNumbers(ctx: DiffContext, o: Unit, p: Unit, diffs: number[]): string[] | undefined {
  const entryO = Number(o.sym.value);
  const entryP = Number(p.sym.value);
  // No line-bearing call, no moved line: decide before paying for the decoder.
  if (!ctx.relocsIn(p.section, entryP, p.end).some((r) => LINE_CALLEES.has(r.symbol.name))) return undefined;
  const insnsO = x86Decoder().decodeRange(o.section.data, entryO, o.end);
  const insnsP = x86Decoder().decodeRange(p.section.data, entryP, p.end);
  if (insnsO.length !== insnsP.length) return undefined;
  const relocsP = ctx.relocsIn(p.section, entryP, p.end);
  const callees = new Map<number, string>();
  for (const r of relocsP) {
    const t = resolveRelocTarget(ctx.patched, p.section, r);
    const name = t.kind === "unit" ? t.unit.sym.name : t.kind === "symbol" ? t.sym.name : "";
    callees.set(r.offset, name);
  }
  const fed = new Set<string>();
  let k = 0;
  for (let i = 0; i < insnsP.length && k < diffs.length; i++) {
    const ip = insnsP[i]!;
    const io = insnsO[i]!;
    const rel = ip.offset - entryP;
    if (diffs[k]! >= rel + ip.length) continue;
    if (diffs[k]! < rel) return undefined;
    // This instruction holds differing bytes: they must all be in its immediate.
    const line = lineImmediate(io, ip);
    if (!line) return undefined;
    const { argument } = line;
    const immStart = line.offset - entryP;
    const immEnd = immStart + line.size;
    while (k < diffs.length && diffs[k]! < rel + ip.length) {
      if (diffs[k]! < immStart || diffs[k]! >= immEnd) return undefined;
      k++;
    }
    const callee = lineCallFollows(insnsP, i, callees);
    if (!callee || (callee.line !== "any" && callee.line !== argument)) return undefined;
    fed.add(callee.name);
  }
  return k === diffs.length ? [...fed] : undefined;
}

/**
 * Where the immediate of `mov $line, %reg` sits and which argument register it loads, when the
 * original and patched instructions are that mov with line-number-like values; else undefined.
 */
function lineImmediate(
  io: X86Instruction,
  ip: X86Instruction,
): { argument: number; offset: number; size: number } | undefined {
  if (io.length !== ip.length || io.mnemonic !== ip.mnemonic || ip.mnemonic !== "mov") return undefined;
  if (!ip.immediate || !io.immediate) return undefined;
  if (!isLineNumber(ip.immediate.value) || !isLineNumber(io.immediate.value)) return undefined;
  const argument = ip.destRegister ? ARGUMENT_REGISTERS.get(ip.destRegister) : undefined;
  if (argument === undefined) return undefined;
  return { argument, offset: ip.immediate.offset, size: ip.immediate.size };
}

function isLineNumber(v: bigint): boolean {
  return v > 0n && v < BigInt(MAX_LINE_NUMBER);
}

/** The line-bearing callee of the first call (or tail jump) within the window after `from`. */
function lineCallFollows(
  insns: X86Instruction[],
  from: number,
  callees: Map<number, string>,
): (typeof LINE_MACRO_CALLEES)[number] | undefined {
  for (let j = from + 1; j < insns.length && j <= from + LINE_CALL_WINDOW; j++) {
    const insn = insns[j]!;
    if (insn.kind !== "call" && insn.kind !== "jump") continue;
    for (let at = insn.offset; at < insn.offset + insn.length; at++) {
      const callee = LINE_CALLEES.get(callees.get(at) ?? "");
      if (callee) return callee;
    }
    if (insn.kind === "call") return undefined;
  }
  return undefined;
}
