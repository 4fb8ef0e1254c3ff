/**
 * One function of the original build against the same function in the target kernel, instruction
 * by instruction. Bytes a relocation fills in (on either side) are "filled in by the linker" and
 * not compared. A differing instruction is allowed only at a site the object itself records as
 * one the build or the kernel rewrites, and only in the form that rewrite produces:
 *
 * - static-branch: a __jump_table site. The compiler emits `jmp` (arch_static_branch with
 *   CONFIG_HAVE_JUMP_LABEL_HACK, "objtool NOPs this") or a nop; objtool's vmlinux pass
 *   (--hacks=jump_label) turns the jmp into a nop of the same length, and jump_label_init
 *   writes the key's state at boot. Allowed: a jmp or nop in ours where the kernel has a jmp or
 *   nops of the same total length.
 * - fentry: an ftrace call site. Kernels built with objtool --mcount --mnop (or recordmcount -n)
 *   have a 5-byte nop where the object has `call __fentry__`; ftrace nops the rest at boot.
 *   Allowed: that call in ours, a nop of the same length in the kernel.
 *
 * Against the running kernel (mode "live": kpatch load reading /proc/kcore) the sites the kernel
 * rewrites at boot or run time are allowed too, each only in the forms its rewrite produces
 * (site-kinds.ts has the list and the kernel's sources for each): an alternative's instrlen
 * bytes (a paravirt site's len) hold any whole instructions; a lock prefix may be a DS prefix; a return-thunk jmp may be
 * ret and int3s; a retpoline thunk call an indirect call or jmp (after an lfence, nops after); a
 * static call a call, jmp, nop5, xor5rax or ret and int3s; an endbr64 the IBT seal's poison nop.
 *
 * Anything else is a mismatch; the first one is reported with both instructions.
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

export interface Mismatch {
  /** Function-relative offset of the first differing instruction (or of the size difference). */
  offset: number;
  ours: string;
  theirs: string;
  reason: string;
}

export interface CodeComparison {
  allowed: AllowedDifference[];
  mismatch?: Mismatch;
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

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function show(code: Uint8Array, insn: X86Instruction): string {
  return `${insn.text} (${hex(code.subarray(insn.offset, insn.offset + insn.length))})`;
}

const isNop = (i: X86Instruction): boolean => !i.invalid && i.mnemonic === "nop";
const isPadding = (i: X86Instruction): boolean => isNop(i) || i.mnemonic === "int3";
const isJmp = (i: X86Instruction): boolean => i.mnemonic === "jmp" && i.kind === "jump" && i.length <= 5;

/** The instructions of `code` in [offset, offset + length), or undefined when they overrun it. */
function run(code: Uint8Array, offset: number, length: number): X86Instruction[] | undefined {
  const list = x86Decoder().decodeRange(code, offset, Math.min(code.length, offset + length));
  const end = list.length ? list[list.length - 1]!.offset + list[list.length - 1]!.length : offset;
  return end === offset + length && !list.some((i) => i.invalid) ? list : undefined;
}

const isBranch = (i: X86Instruction): boolean => (i.kind === "call" || i.kind === "jump") && !i.invalid;
/** ret then int3s: patch_return()'s and static_call's retinsn. */
const isRetPad = ([first, ...rest]: X86Instruction[]): boolean =>
  first?.mnemonic === "ret" && rest.every((i) => i.mnemonic === "int3");

/** A lock prefix (f0) made a DS prefix (3e), the rest of the instruction the same. */
function lockMadeDs(ours: X86Instruction, code: { ours: FunctionCode; theirs: TheirCode }): boolean {
  const at = ours.offset;
  if (code.ours.bytes[at] !== 0xf0 || code.theirs.bytes[at] !== 0x3e) return false;
  for (let k = at + 1; k < at + ours.length; k++) {
    if (code.ours.linked[k] || code.theirs.linked?.[k]) continue;
    if (code.ours.bytes[k] !== code.theirs.bytes[k]) return false;
  }
  return true;
}

/** The same instruction with only its immediate written (a runtime constant: imm64 of movabs, imm8 of shr). */
function onlyImmediateWritten(
  ours: X86Instruction,
  theirs: X86Instruction,
  bytes: { ours: Uint8Array; theirs: Uint8Array },
): boolean {
  if (theirs.length !== ours.length || theirs.mnemonic !== ours.mnemonic) return false;
  const immSize = ours.length === 10 ? 8 : 1;
  for (let k = ours.offset; k < ours.offset + ours.length - immSize; k++)
    if (bytes.ours[k] !== bytes.theirs[k]) return false;
  return true;
}

/** Whether the kernel's bytes at a site are a form the site's rewrite produces. */
function allowedAt(
  kind: SiteKind,
  ours: X86Instruction,
  theirs: X86Instruction[] | undefined,
  code: { ours: FunctionCode; theirs: TheirCode },
): boolean {
  const bytes = { ours: code.ours.bytes, theirs: code.theirs.bytes };
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
      return rest.length === 0 && onlyImmediateWritten(ours, first!, bytes);
    case "endbr": {
      const poison = [0x66, 0x0f, 0x1f, 0x00];
      return ours.mnemonic === "endbr64" && poison.every((b, k) => bytes.theirs[ours.offset + k] === b);
    }
  }
}

/**
 * An allowed difference whose instruction texts are formatted when read (a report printed): a
 * load compares every fentry site, and formatting is what would start iced-x86 (the length
 * decoder tells the rest).
 */
function allowedDifference(
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
function siteAt(ours: FunctionCode, offset: number, mode: CompareMode): Site | undefined {
  const site = ours.sites.get(offset);
  return site && (mode === "live" || siteKind(site.kind).image) ? site : undefined;
}

export function compareCode(
  ours: FunctionCode,
  theirs: TheirCode,
  mode: CompareMode = "image",
): CodeComparison {
  const size = ours.bytes.length;
  const allowed: AllowedDifference[] = [];
  const decoder = x86Decoder();
  const mine = decoder.decodeRange(ours.bytes, 0, size);
  let skipTo = 0;
  for (const insn of mine) {
    if (insn.offset < skipTo) continue;
    const site = siteAt(ours, insn.offset, mode);
    // A site of several instructions (an alternative) is compared, and allowed, as one piece.
    const length = site?.length && insn.offset + site.length <= size ? site.length : insn.length;
    const end = insn.offset + length;
    skipTo = end;
    let differs = end > theirs.bytes.length;
    for (let k = insn.offset; k < end && !differs; k++) {
      if (ours.linked[k] || theirs.linked?.[k]) continue;
      differs = ours.bytes[k] !== theirs.bytes[k];
    }
    if (!differs) continue;
    const their = run(theirs.bytes, insn.offset, length);
    if (site && allowedAt(site.kind, insn, their, { ours, theirs })) {
      allowed.push(
        allowedDifference(insn.offset, site, {
          ours: () => show(ours.bytes, insn),
          theirs: () => their!.map((i) => show(theirs.bytes, i)).join("; "),
        }),
      );
      continue;
    }
    const t = insn.offset < theirs.bytes.length ? decoder.decode(theirs.bytes, insn.offset) : undefined;
    return {
      allowed,
      mismatch: {
        offset: insn.offset,
        ours: show(ours.bytes, insn),
        theirs: t ? show(theirs.bytes, t) : "(past the end of the kernel's code)",
        reason: site
          ? `a ${site.kind} site (${site.evidence}) in a form no rewrite produces`
          : "different code",
      },
    };
  }
  const mismatch = sizeMismatch(ours, theirs);
  return mismatch ? { allowed, mismatch } : { allowed };
}

function sizeMismatch(ours: FunctionCode, theirs: TheirCode): Mismatch | undefined {
  const size = ours.bytes.length;
  if (theirs.size !== undefined && theirs.size !== size) {
    return {
      offset: Math.min(size, theirs.size),
      ours: `${size} bytes`,
      theirs: `${theirs.size} bytes`,
      reason: "the functions have different sizes",
    };
  }
  if (theirs.tail && theirs.tail.length > 0) {
    // Code right at our end, or after padding but not where a function may start (16-byte
    // alignment), continues the kernel's function. Aligned code after padding is another function
    // kallsyms has no name for (a weak definition the linker discarded in favour of another),
    // even when it starts with a nop: its ftrace site, nopped (seen on Debian's 6.1: a nameless
    // `call __fentry__; jmp __x86_return_thunk` after loadavg_proc_show, live `nop5; ret`).
    const tail = x86Decoder().decodeRange(theirs.tail, 0, theirs.tail.length);
    const base = theirs.tailAt ?? 0n;
    const starts = (i: X86Instruction) =>
      i.offset > 0 && (base + BigInt(i.offset)) % 16n === 0n && i.mnemonic !== "int3";
    const extra = tail.find((i) => starts(i) || !isPadding(i));
    if (extra && !starts(extra)) {
      return {
        offset: size,
        ours: "(end of function)",
        theirs: `${extra.text} at +0x${(size + extra.offset).toString(16)}`,
        reason: "the kernel's function is longer",
      };
    }
  }
  return undefined;
}
