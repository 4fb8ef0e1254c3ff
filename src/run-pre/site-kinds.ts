/**
 * The one list of the places in a function's code that the build or the kernel rewrites, so the
 * code the kernel runs may legitimately differ there from the object that was compiled. The
 * image comparison (kpatch-build's run-pre check, against a vmlinux file) allows only what the
 * build rewrites; the live comparison (kpatch load, against /proc/kcore) allows what the kernel
 * rewrites at boot or at run time too. Each kind has a code (the .kpatch.runpre record stores
 * it: never renumber) and the kernel's sources that say so (linux 6.12).
 *
 * Bytes under a relocation are not a site: the linker or module loader fills them in (a call's
 * rel32, which ftrace, static calls and call-depth thunks (.call_sites, callthunks.c
 * patch_call(): only the destination changes) also rewrite), and they are masked as "linked".
 */

export type SiteKind =
  | "static-branch"
  | "fentry"
  | "alternative"
  | "smp-lock"
  | "return-thunk"
  | "retpoline"
  | "static-call"
  | "endbr"
  | "paravirt"
  | "runtime-const";

export interface SiteKindInfo {
  kind: SiteKind;
  /** Stored in the .kpatch.runpre record (1..); 0 is "linked" (relocation bytes). */
  code: number;
  /** Rewritten in the kernel image itself (so a vmlinux file already differs there). */
  image: boolean;
  /** Why the running kernel may differ there, with the source that does it. */
  evidence: string;
}

export const SITE_KINDS: readonly SiteKindInfo[] = [
  {
    kind: "static-branch",
    code: 1,
    image: true,
    evidence:
      "__jump_table entry: objtool --hacks=jump_label NOPs the jmp in vmlinux.o; jump_label_init() and arch_jump_label_transform() (arch/x86/kernel/jump_label.c) write jmp or nop of the site's size (2 or 5 bytes)",
  },
  {
    kind: "fentry",
    code: 2,
    image: true,
    evidence:
      "__mcount_loc/__patchable_function_entries entry: objtool --mnop (or recordmcount) makes call __fentry__ a nop5; ftrace_replace_code() (arch/x86/kernel/ftrace.c) writes a call to ftrace_caller or a trampoline while traced or patched",
  },
  {
    kind: "alternative",
    code: 3,
    image: false,
    evidence:
      ".altinstructions entry (struct alt_instr, arch/x86/include/asm/alternative.h): apply_alternatives() (arch/x86/kernel/alternative.c) writes the replacement padded with nops over instrlen bytes at boot and module load; paravirt calls are ALT_FLAG_CALL alternatives on 6.8+ (no .parainstructions)",
  },
  {
    kind: "smp-lock",
    code: 4,
    image: false,
    evidence:
      ".smp_locks entry: alternatives_smp_unlock() (arch/x86/kernel/alternative.c) turns the lock prefix (f0) into a DS prefix (3e) when one CPU is possible, alternatives_smp_lock() back",
  },
  {
    kind: "return-thunk",
    code: 5,
    image: false,
    evidence:
      "jmp __x86_return_thunk (objtool --rethunk lists it in .return_sites): apply_returns()/patch_return() (arch/x86/kernel/alternative.c) writes ret; int3... or a jmp to the selected return thunk",
  },
  {
    kind: "retpoline",
    code: 6,
    image: false,
    evidence:
      "call/jmp/jcc __x86_indirect_thunk_* (objtool --retpoline lists it in .retpoline_sites): apply_retpolines()/patch_retpoline() (arch/x86/kernel/alternative.c) writes [lfence;] call/jmp *%reg padded with nops, or a call-depth thunk call",
  },
  {
    kind: "static-call",
    code: 7,
    image: false,
    evidence:
      "call/jmp __SCT__* (objtool --static-call lists it in .static_call_sites): __static_call_transform() (arch/x86/kernel/static_call.c) writes a call or jmp to the target, nop5, xor5rax (cs cs cs xor %eax,%eax) or ret; int3...",
  },
  {
    kind: "endbr",
    code: 8,
    image: false,
    evidence:
      "endbr64 (CONFIG_X86_KERNEL_IBT): objtool --ibt lists the ENDBRs of functions whose address is not taken in .ibt_endbr_seal (vmlinux.o pass); apply_seal_endbr()/poison_endbr() (arch/x86/kernel/alternative.c) writes gen_endbr_poison(), osp nopl (%rax) (66 0f 1f 00)",
  },
  {
    kind: "paravirt",
    code: 9,
    image: false,
    evidence:
      ".parainstructions entry (kernels before 6.8: struct paravirt_patch_site {u8 *instr; u8 type; u8 len;}, arch/x86/include/asm/paravirt_types.h): apply_paravirt() (arch/x86/kernel/alternative.c) writes paravirt_patch()'s code padded with nops over len bytes at boot and module load",
  },
  {
    kind: "runtime-const",
    code: 10,
    image: false,
    evidence:
      "runtime_ptr_<sym>/runtime_shift_<sym> entry (6.11+, arch/x86/include/asm/runtime-const.h): runtime_const_init() (fs/dcache.c: dentry_hashtable, d_hash_shift; arch/x86/kernel/cpu/common.c: USER_PTR_MAX) writes the variable's value over the movabs imm64 (placeholder 0x0123456789abcdef) or the shr imm8 at boot",
  },
];

const BY_KIND = new Map(SITE_KINDS.map((k) => [k.kind, k]));
const BY_CODE = new Map(SITE_KINDS.map((k) => [k.code, k]));

export function siteKind(kind: SiteKind): SiteKindInfo {
  return BY_KIND.get(kind)!;
}

export function siteKindByCode(code: number): SiteKindInfo | undefined {
  return BY_CODE.get(code);
}

/** Relocation targets that make the instruction holding them a site of a kind. */
export function kindOfCallTarget(symbol: string): SiteKind | undefined {
  if (symbol === "__x86_return_thunk") return "return-thunk";
  if (symbol.startsWith("__x86_indirect_thunk_") || symbol.startsWith("__x86_indirect_jump_thunk_"))
    return "retpoline";
  if (symbol.startsWith("__SCT__")) return "static-call";
  return undefined;
}
