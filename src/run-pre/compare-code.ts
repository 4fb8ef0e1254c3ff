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
import { comparePadded } from "./compare-padded.js";
import type { FunctionCode } from "./function-code.js";
import {
  type AllowedDifference,
  allowedAt,
  allowedDifference,
  type CompareMode,
  codeAfterEnd,
  run,
  show,
  siteAt,
  type TheirCode,
} from "./site-forms.js";

export interface Mismatch {
  /** Function-relative offset of the first differing instruction (or of the size difference). */
  offset: number;
  ours: string;
  theirs: string;
  reason: string;
}

/** A function that matched only once alignment padding was taken out (compare-padded.ts). */
export interface PaddingOnly {
  /** NOP bytes more or fewer on either side, summed over every run of padding. */
  bytes: number;
  /** Intra-function branches whose displacement differs (their targets are the same instructions). */
  branches: number;
  /** Of the others, jmp/jcc rel8 on one side and rel32 on the other, the same target (relaxed by the assembler). */
  relaxed: number;
}

export interface CodeComparison {
  allowed: AllowedDifference[];
  mismatch?: Mismatch;
  /** Set when the code matched only modulo alignment NOPs. */
  padding?: PaddingOnly;
}

/**
 * Ours against the kernel's: byte for byte first (the fast path); when that finds a difference,
 * again with alignment padding taken out (compare-padded.ts), which reports the first mismatch
 * itself when the padding does not explain it.
 */
export function compareCode(
  ours: FunctionCode,
  theirs: TheirCode,
  mode: CompareMode = "image",
): CodeComparison {
  const mine = x86Decoder().decodeRange(ours.bytes, 0, ours.bytes.length);
  const exact = compareExact(ours, mine, theirs, mode);
  return exact.mismatch ? comparePadded({ ...ours, decoded: mine }, theirs, mode, exact) : exact;
}

function compareExact(
  ours: FunctionCode,
  mine: X86Instruction[],
  theirs: TheirCode,
  mode: CompareMode,
): CodeComparison {
  const size = ours.bytes.length;
  const allowed: AllowedDifference[] = [];
  const decoder = x86Decoder();
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
    if (site && allowedAt(site.kind, insn, their, { ours, theirs, at: insn.offset })) {
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
    const extra = codeAfterEnd(theirs.tail, 0, theirs.tail.length, theirs.tailAt ?? 0n);
    if (extra) {
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
