/**
 * What a site (site-kinds.ts) may hold in the kernel: the forms each kind's rewrite produces,
 * checked for one instruction of ours against the kernel's instructions at the same place. Used by
 * the exact comparison (compare-code.ts) and the one tolerant of alignment padding
 * (compare-padded.ts), where "the same place" is the kernel's offset `at`, not ours.
 */
import { type X86Instruction, x86Decoder } from "../x86/index.js";
import type { FunctionCode, Site } from "./function-code.js";
import { type SiteKind, siteKind } from "./site-kinds.js";

/** Against a kernel image file (kpatch-build) or the running kernel's text (kpatch load). */
export type CompareMode = "image" | "live";

export interface AllowedDifference {
  offset: number;
  kind: SiteKind;
  ours: string;
  theirs: string;
  evidence: string;
}

/** The target's side: its bytes at the function's address, and what is known of its extent. */
export interface TheirCode {
  /** At least as many bytes as ours (fewer only when the image has no more). */
  bytes: Uint8Array;
  /** Bytes a relocation of the target fills in (a module's), 1 per byte; absent for a linked image. */
  linked?: Uint8Array;
  /** The function's exact size (from a symbol table), when known. */
  size?: number;
  /**
   * Without an exact size: the bytes from our end to the next symbol (kallsyms' extent), which
   * must be padding (nops, int3) for the function to end where ours does.
   */
  tail?: Uint8Array;
  /** The address of the tail's first byte. */
  tailAt?: bigint;
}

/** Both sides of a comparison, and where in the kernel's bytes ours is being compared. */
export interface SitePair {
  ours: FunctionCode;
  theirs: TheirCode;
  /** The kernel's offset of the instruction compared with ours (ours's own offset when exact). */
  at: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export function show(code: Uint8Array, insn: X86Instruction): string {
  return `${insn.text} (${hex(code.subarray(insn.offset, insn.offset + insn.length))})`;
}

const isNop = (i: X86Instruction): boolean => !i.invalid && i.mnemonic === "nop";
export const isPadding = (i: X86Instruction): boolean => isNop(i) || i.mnemonic === "int3";
const isJmp = (i: X86Instruction): boolean => i.mnemonic === "jmp" && i.kind === "jump" && i.length <= 5;

/** The instructions of `code` in [offset, offset + length), or undefined when they overrun it. */
export function run(code: Uint8Array, offset: number, length: number): X86Instruction[] | undefined {
  const list = x86Decoder().decodeRange(code, offset, Math.min(code.length, offset + length));
  const end = list.length ? list[list.length - 1]!.offset + list[list.length - 1]!.length : offset;
  return end === offset + length && !list.some((i) => i.invalid) ? list : undefined;
}

const isBranch = (i: X86Instruction): boolean => (i.kind === "call" || i.kind === "jump") && !i.invalid;
/** ret then int3s: patch_return()'s and static_call's retinsn. */
const isRetPad = ([first, ...rest]: X86Instruction[]): boolean =>
  first?.mnemonic === "ret" && rest.every((i) => i.mnemonic === "int3");

/** A lock prefix (f0) made a DS prefix (3e), the rest of the instruction the same. */
function lockMadeDs(ours: X86Instruction, code: SitePair): boolean {
  const at = ours.offset;
  const delta = code.at - at;
  if (code.ours.bytes[at] !== 0xf0 || code.theirs.bytes[code.at] !== 0x3e) return false;
  for (let k = at + 1; k < at + ours.length; k++) {
    if (code.ours.linked[k] || code.theirs.linked?.[k + delta]) continue;
    if (code.ours.bytes[k] !== code.theirs.bytes[k + delta]) return false;
  }
  return true;
}

/** The same instruction with only its immediate written (a runtime constant: imm64 of movabs, imm8 of shr). */
function onlyImmediateWritten(ours: X86Instruction, theirs: X86Instruction, code: SitePair): boolean {
  if (theirs.length !== ours.length || theirs.mnemonic !== ours.mnemonic) return false;
  const immSize = ours.length === 10 ? 8 : 1;
  const delta = code.at - ours.offset;
  for (let k = ours.offset; k < ours.offset + ours.length - immSize; k++)
    if (code.ours.bytes[k] !== code.theirs.bytes[k + delta]) return false;
  return true;
}

/** Whether the kernel's bytes at a site are a form the site's rewrite produces. */
export function allowedAt(
  kind: SiteKind,
  ours: X86Instruction,
  theirs: X86Instruction[] | undefined,
  code: SitePair,
): boolean {
  if (!theirs || theirs.length === 0) return false;
  const [first, ...rest] = theirs;
  switch (kind) {
    case "static-branch":
      if (!isJmp(ours) && !isNop(ours)) return false;
      return (isJmp(first!) || isNop(first!)) && rest.every(isNop);
    case "fentry":
      return (
        ours.kind === "call" &&
        ours.length === 5 &&
        (theirs.every(isNop) || (first!.kind === "call" && rest.length === 0))
      );
    case "alternative":
    case "paravirt":
      return true; // whole instructions over exactly the site's length: run() checked that
    case "smp-lock":
      return lockMadeDs(ours, code);
    case "return-thunk":
      return isRetPad(theirs) || (isJmp(first!) && rest.length === 0);
    case "retpoline":
      return theirs.every((i) => isBranch(i) || isNop(i) || i.mnemonic === "lfence" || i.mnemonic === "int3");
    case "static-call":
      return (
        (isBranch(first!) && rest.length === 0) ||
        theirs.every(isNop) ||
        isRetPad(theirs) ||
        (first!.mnemonic === "xor" && rest.length === 0)
      );
    case "runtime-const":
      return rest.length === 0 && onlyImmediateWritten(ours, first!, code);
    case "endbr": {
      const poison = [0x66, 0x0f, 0x1f, 0x00];
      return ours.mnemonic === "endbr64" && poison.every((b, k) => code.theirs.bytes[code.at + k] === b);
    }
  }
}

/**
 * An allowed difference whose instruction texts are formatted when read (a report printed): a
 * load compares every fentry site, and formatting is what would start iced-x86 (the length
 * decoder tells the rest).
 */
export function allowedDifference(
  offset: number,
  site: Site,
  text: { ours: () => string; theirs: () => string },
): AllowedDifference {
  const out = { offset, kind: site.kind, evidence: site.evidence } as AllowedDifference;
  for (const side of ["ours", "theirs"] as const) {
    let value: string | undefined;
    Object.defineProperty(out, side, {
      enumerable: true,
      get: () => {
        value ??= text[side]();
        return value;
      },
    });
  }
  return out;
}

/** The site at an instruction, when the mode allows its kind. */
export function siteAt(ours: FunctionCode, offset: number, mode: CompareMode): Site | undefined {
  const site = ours.sites.get(offset);
  return site && (mode === "live" || siteKind(site.kind).image) ? site : undefined;
}

/** Whether ours's bytes [from, from + length) equal the kernel's at `at`, relocated bytes masked. */
export function sameBytes(
  ours: FunctionCode,
  theirs: TheirCode,
  from: number,
  at: number,
  length: number,
): boolean {
  if (at + length > theirs.bytes.length) return false;
  for (let k = 0; k < length; k++) {
    if (ours.linked[from + k] || theirs.linked?.[at + k]) continue;
    if (ours.bytes[from + k] !== theirs.bytes[at + k]) return false;
  }
  return true;
}

/**
 * What continues the kernel's function in `code` [from, to) past where ours ends (`base` the
 * address of code[0]): code right at the end, or after padding but not where a function may
 * start (16-byte alignment). Undefined when only padding follows, or padding then aligned code:
 * another function kallsyms has no name for (a weak definition the linker discarded in favour of
 * another), even when it starts with a nop: its ftrace site, nopped (seen on Debian's 6.1: a
 * nameless `call __fentry__; jmp __x86_return_thunk` after loadavg_proc_show, live `nop5; ret`).
 */
export function codeAfterEnd(
  code: Uint8Array,
  from: number,
  to: number,
  base: bigint,
): X86Instruction | undefined {
  const after = x86Decoder().decodeRange(code, from, to);
  const starts = (i: X86Instruction) =>
    i.offset > from && (base + BigInt(i.offset)) % 16n === 0n && i.mnemonic !== "int3";
  const extra = after.find((i) => starts(i) || !isPadding(i));
  return extra && !starts(extra) ? extra : undefined;
}
