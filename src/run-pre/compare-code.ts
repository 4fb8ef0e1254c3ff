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
 * Anything else is a mismatch; the first one is reported with both instructions.
 */
import { type X86Instruction, x86Decoder } from "../x86/index.js";
import type { FunctionCode, SiteKind } from "./function-code.js";

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

/** Whether the kernel's bytes at a site are a form the site's rewrite produces. */
function allowedAt(kind: SiteKind, ours: X86Instruction, theirs: X86Instruction[] | undefined): boolean {
  if (!theirs || theirs.length === 0) return false;
  if (kind === "static-branch") {
    if (!isJmp(ours) && !isNop(ours)) return false;
    const [first, ...rest] = theirs;
    return (isJmp(first!) || isNop(first!)) && rest.every(isNop);
  }
  return ours.kind === "call" && ours.length === 5 && theirs.every(isNop);
}

export function compareCode(ours: FunctionCode, theirs: TheirCode): CodeComparison {
  const size = ours.bytes.length;
  const allowed: AllowedDifference[] = [];
  const decoder = x86Decoder();
  const mine = decoder.decodeRange(ours.bytes, 0, size);
  for (const insn of mine) {
    const end = insn.offset + insn.length;
    let differs = end > theirs.bytes.length;
    for (let k = insn.offset; k < end && !differs; k++) {
      if (ours.linked[k] || theirs.linked?.[k]) continue;
      differs = ours.bytes[k] !== theirs.bytes[k];
    }
    if (!differs) continue;
    const site = ours.sites.get(insn.offset);
    const their = run(theirs.bytes, insn.offset, insn.length);
    if (site && allowedAt(site.kind, insn, their)) {
      allowed.push({
        offset: insn.offset,
        kind: site.kind,
        ours: show(ours.bytes, insn),
        theirs: their!.map((i) => show(theirs.bytes, i)).join("; "),
        evidence: site.evidence,
      });
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
    // kallsyms has no name for (a weak definition the linker discarded in favour of another).
    const tail = x86Decoder().decodeRange(theirs.tail, 0, theirs.tail.length);
    const extra = tail.find((i) => !isPadding(i));
    const at = extra ? (theirs.tailAt ?? 0n) + BigInt(extra.offset) : 0n;
    if (extra && (extra.offset === 0 || at % 16n !== 0n)) {
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
