/**
 * The differ's lists of special names, in one place, each with the reason it is on its list.
 * Everything else in the differ decides by section flags and relocations, not by name.
 */
import { type CallbackKind, callbackSectionName } from "../klp/format.js";

/** Sections that never affect the verdict and are never copied, by name prefix. */
export const IGNORED_SECTION_PREFIXES: readonly { prefix: string; why: string }[] = [
  { prefix: ".debug_", why: "debug information: line numbers move with every edit and nothing executes it" },
  { prefix: ".rela.debug_", why: "relocations of debug information" },
  { prefix: ".comment", why: "compiler version string" },
  { prefix: ".note.GNU-stack", why: "stack executability marker, the same for every object" },
  { prefix: ".note.gnu.property", why: "CET property note: the module build makes its own" },
  {
    prefix: ".discard.",
    why: "objtool annotations (.discard.reachable, .discard.addressable...), dropped at link",
  },
  { prefix: ".BTF", why: "type information for BPF, generated again for the patch module" },
  { prefix: ".llvm_addrsig", why: "linker address-significance table" },
  { prefix: ".GCC.command.line", why: "the compiler command line" },
  { prefix: ".modinfo", why: "module metadata: the patch module has its own" },
  { prefix: "__versions", why: "module symbol CRCs: modpost makes the patch module's own" },
  {
    prefix: ".gnu.linkonce.this_module",
    why: "the target module's struct module: the patch module has its own",
  },
  {
    prefix: ".printk_index",
    why: "printk format index (CONFIG_PRINTK_INDEX, off in Debian's kernels): read only by the debugfs printk/index/ listing, never when printing, so the new code prints the same without it; the patch's new formats are not listed there",
  },
  {
    prefix: ".export_symbol",
    why: "EXPORT_SYMBOL records: a live patch cannot add exports to the running kernel",
  },
  {
    prefix: "___ksymtab",
    why: "exports (older kernels): a live patch cannot add exports to the running kernel",
  },
  {
    prefix: "__ksymtab",
    why: "exports (older kernels): a live patch cannot add exports to the running kernel",
  },
  { prefix: "__kcrctab", why: "export CRCs (older kernels)" },
  { prefix: "__kstrtab", why: "export names (older kernels)" },
  { prefix: ".kcfi_traps", why: "clang KCFI trap list, rebuilt for the patch module" },
];

/**
 * Sections that run only while the kernel (or the target module) initializes. Code and data in
 * them cannot be patched live: it has already run and its memory is freed. Not `.ref.*`: __ref
 * code and data may refer to __init memory but live and run for the kernel's whole life
 * (text_poke_queue on 6.1, pernet exit methods), so they are patched like any other.
 */
export const INIT_SECTION_PREFIXES: readonly string[] = [
  ".init.", // .init.text, .init.data, .init.rodata, .init.setup
  ".exit.", // exit code of built-in objects is discarded; for modules it is cold and unpatchable
  ".initcall", // initcall tables
  ".con_initcall", // console initcalls
  ".x86_cpu_dev.init",
  ".head.text", // early boot code
  ".meminit.", // memory hotplug init, freed on non-hotplug configs
  "__param", // module/boot parameters: registered once at boot
  ".security_initcall",
  ".earlycon",
  "__setup",
];

/**
 * Calls whose argument list carries __LINE__: a changed immediate loaded into the line's argument
 * register before one of these is a moved line, not a changed function (kpatch keeps such a list
 * too). `line` is the argument's position (1-based, SysV x86-64), or "any" for a printk-style
 * call whose format may print __LINE__ in any argument.
 */
export const LINE_MACRO_CALLEES: readonly { name: string; line: number | "any"; why: string }[] = [
  { name: "__might_sleep", line: 2, why: "might_sleep(): __might_sleep(__FILE__, __LINE__)" },
  {
    name: "___might_sleep",
    line: 2,
    why: "might_sleep() before 5.16: ___might_sleep(__FILE__, __LINE__, 0)",
  },
  {
    name: "__might_resched",
    line: 2,
    why: "cond_resched() and friends: __might_resched(__FILE__, __LINE__, ...)",
  },
  { name: "__might_fault", line: 2, why: "might_fault(): __might_fault(__FILE__, __LINE__)" },
  { name: "__cant_sleep", line: 2, why: "cant_sleep(): __cant_sleep(__FILE__, __LINE__, ...)" },
  { name: "__cant_migrate", line: 2, why: "cant_migrate(): __cant_migrate(__FILE__, __LINE__)" },
  { name: "__warn_printk", line: "any", why: "WARN() formats may print __LINE__" },
  { name: "_printk", line: "any", why: "pr_*() messages that print __LINE__" },
  { name: "printk", line: "any", why: "older kernels' printk" },
  {
    name: "lockdep_rcu_suspicious",
    line: 2,
    why: "RCU_LOCKDEP_WARN: lockdep_rcu_suspicious(__FILE__, __LINE__, ...)",
  },
  { name: "__warn", line: 2, why: "__warn(file, line, ...)" },
  { name: "__ubsan_handle_out_of_bounds", line: "any", why: "UBSAN source locations" },
  {
    name: "__btrfs_abort_transaction",
    line: 3,
    why: "btrfs_abort_transaction(): __btrfs_abort_transaction(trans, __func__, __LINE__, errno, ...)",
  },
  {
    name: "__btrfs_handle_fs_error",
    line: 3,
    why: "btrfs_handle_fs_error(): __btrfs_handle_fs_error(fs_info, __func__, __LINE__, errno, fmt, ...)",
  },
  {
    name: "__btrfs_panic",
    line: 3,
    why: "btrfs_panic(): __btrfs_panic(fs_info, __func__, __LINE__, errno, fmt, ...)",
  },
];

/** The registers of the SysV x86-64 integer arguments 2 to 6 (where __LINE__ goes), by position. */
export const ARGUMENT_REGISTERS: ReadonlyMap<string, number> = new Map([
  ["esi", 2],
  ["rsi", 2],
  ["edx", 3],
  ["rdx", 3],
  ["ecx", 4],
  ["rcx", 4],
  ["r8d", 5],
  ["r8", 5],
  ["r9d", 6],
  ["r9", 6],
]);

/** Immediates that can be a line number (a moved line changes one of these into another). */
export const MAX_LINE_NUMBER = 1_000_000;

/** How many instructions after a line immediate the line-bearing call may come. */
export const LINE_CALL_WINDOW = 8;

/**
 * Symbols the compiler or kernel build creates that are not functions or objects of the source:
 * never correlated, compared or reported on their own.
 */
export const IGNORED_SYMBOL_PREFIXES: readonly { prefix: string; why: string }[] = [
  { prefix: "__pfx_", why: "objtool prefix symbols over the call padding before each function" },
  { prefix: "__cfi_", why: "kCFI type-hash preambles, part of the function after them" },
  { prefix: "__UNIQUE_ID_", why: "macro-generated names (__ADDRESSABLE, ...) numbered per translation unit" },
  { prefix: "__export_symbol_", why: "EXPORT_SYMBOL records" },
  { prefix: "__initcall__", why: "initcall table entries" },
  { prefix: "__kstrtab_", why: "export names (older kernels)" },
  { prefix: "__ksymtab_", why: "export records (older kernels)" },
  { prefix: ".L", why: "assembler-local labels" },
];

/**
 * Static locals whose value is per-call-site bookkeeping, not program state: a new copy in the
 * patch module starts fresh, which is what the patched code expects. Matched on the base name
 * (without the .N suffix).
 */
const FRESH_STATIC_LOCALS: readonly { name: string; why: string }[] = [
  { name: "__warned", why: "WARN_ONCE()'s once flag: a new one just warns once more" },
  { name: "__already_done", why: "printk_once()/DO_ONCE flag" },
  { name: "__print_once", why: "older kernels' printk_once flag" },
  { name: "_rs", why: "printk_ratelimited()'s ratelimit state" },
  { name: "__key", why: "lockdep class keys: only their address matters" },
  { name: "__func__", why: "the function's name string" },
  { name: "descriptor", why: "dynamic debug descriptors" },
];

const FRESH_BASES = new Set(FRESH_STATIC_LOCALS.map((f) => f.name));

/**
 * True for a static local (by its base name: correlate-symbols.ts baseName) that needs no identity with the running kernel's copy (its base name
 * is on FRESH_STATIC_LOCALS, or a macro-made `__UNIQUE_ID_*`): where the target's symbols cannot
 * tell which same-named copy is ours (kallsyms has no file symbols), the patch takes its own copy,
 * as kpatch does for every one of them.
 */
export function isFreshStatic(base: string): boolean {
  return FRESH_BASES.has(base) || base.startsWith("__UNIQUE_ID_");
}

/**
 * Writable data sections the compiler makes with no symbol (`.L` private globals): the running
 * kernel's copy cannot be named, so code that refers to one carries its own fresh copy. They hold
 * per-site diagnostics, not program state.
 */
const ANONYMOUS_DATA_PREFIXES: readonly { prefix: string; why: string }[] = [
  {
    prefix: ".data..L",
    why: "UBSAN check sites: gcc's .Lubsan_data/.Lubsan_type, clang's .L__unnamed_N (source location, type, a reported-once flag)",
  },
  { prefix: ".bss..L", why: "compiler-private zeroed data, as above" },
];

export function isAnonymousData(section: string): boolean {
  return ANONYMOUS_DATA_PREFIXES.some((p) => section.startsWith(p.prefix));
}

/** Symbols that every fentry-instrumented function calls first (after endbr64). */
export const FENTRY_SYMBOLS: ReadonlySet<string> = new Set(["__fentry__", "mcount", "__mcount"]);

/** Bytes of NOP padding before each function (-fpatchable-function-entry=16,16, CALL_PADDING). */
export const MAX_CALL_PADDING = 64;

/**
 * Sections that a kpatch-macros.h puts in the PATCHED object: arrays of pointers the patch author
 * writes for the differ and the module generator (never in the running kernel, never compared).
 * readDirectives() reads them; only the callbacks go on into the output, in our format
 * (klp/format.ts). Ours (include/kpatch-ts) are `.kpatch_ts.*`; kpatch's own header, which
 * patches written for kpatch include, makes `.kpatch.*` with the same meaning.
 */
export const DIRECTIVE_SECTION_PREFIXES: readonly string[] = [".kpatch_ts.", ".kpatch."];

export type DirectiveKind = "callback" | "ignore-function" | "ignore-section" | "force-function" | "obsolete";

export interface DirectiveSection {
  name: string;
  kind: DirectiveKind;
  /** Bytes per entry: the pointer first (one R_X86_64_64), zeros after it. */
  entrySize: number;
  /** For callbacks: which one. */
  callback?: CallbackKind;
  why: string;
}

const OURS = (kind: CallbackKind, why: string): DirectiveSection => ({
  name: callbackSectionName(kind),
  kind: "callback",
  entrySize: 8,
  callback: kind,
  why,
});

/**
 * kpatch's callbacks: `struct kpatch_<kind>_callback { fn; char *objname; }`, 16 bytes, objname
 * NULL (kpatch's differ fills it in; we make the callback the klp_object's instead).
 */
const KPATCHS = (kind: CallbackKind): DirectiveSection => ({
  name: `.kpatch.callbacks.${kind}`,
  kind: "callback",
  entrySize: 16,
  callback: kind,
  why: `kpatch's KPATCH_${kind.toUpperCase()}_CALLBACK ({fn, objname}): read as ours`,
});

export const DIRECTIVE_SECTIONS: readonly DirectiveSection[] = [
  OURS(
    "pre_patch",
    "KPATCH_PRE_PATCH_CALLBACK: copied to the output, where the module generator makes it the klp_object's callback",
  ),
  OURS("post_patch", "KPATCH_POST_PATCH_CALLBACK: as pre_patch"),
  OURS("pre_unpatch", "KPATCH_PRE_UNPATCH_CALLBACK: as pre_patch"),
  OURS("post_unpatch", "KPATCH_POST_UNPATCH_CALLBACK: as pre_patch"),
  {
    name: ".kpatch_ts.ignore.functions",
    kind: "ignore-function",
    entrySize: 8,
    why: "KPATCH_IGNORE_FUNCTION: the changes of these functions are not patched",
  },
  {
    name: ".kpatch_ts.ignore.sections",
    kind: "ignore-section",
    entrySize: 8,
    why: "KPATCH_IGNORE_SECTION: changes in the sections named are ignored",
  },
  {
    name: ".kpatch_ts.force.functions",
    kind: "force-function",
    entrySize: 8,
    why: "KPATCH_FORCE_UNSAFE: these functions are patched where the differ would refuse or skip them",
  },
  KPATCHS("pre_patch"),
  KPATCHS("post_patch"),
  KPATCHS("pre_unpatch"),
  KPATCHS("post_unpatch"),
  {
    name: ".kpatch.ignore.functions",
    kind: "ignore-function",
    entrySize: 8,
    why: "kpatch's KPATCH_IGNORE_FUNCTION (void * to the function): read as ours",
  },
  {
    name: ".kpatch.ignore.sections",
    kind: "ignore-section",
    entrySize: 8,
    why: "kpatch's KPATCH_IGNORE_SECTION (char * to the name): read as ours",
  },
  {
    name: ".kpatch.force",
    kind: "force-function",
    entrySize: 8,
    why: "kpatch's KPATCH_FORCE_UNSAFE (void * to the function): read as ours",
  },
  {
    name: ".kpatch.hooks.load",
    kind: "obsolete",
    entrySize: 16,
    why: "kpatch's KPATCH_LOAD_HOOK (its old core module's hooks): KPATCH_POST_PATCH_CALLBACK replaced it",
  },
  {
    name: ".kpatch.hooks.unload",
    kind: "obsolete",
    entrySize: 16,
    why: "kpatch's KPATCH_UNLOAD_HOOK (its old core module's hooks): KPATCH_PRE_UNPATCH_CALLBACK replaced it",
  },
];
