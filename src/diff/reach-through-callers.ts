/**
 * reachThroughCallers(): a changed function ftrace cannot redirect (no __fentry__ call: the
 * out-of-line copy of a `static inline` function, which the kernel's `inline` makes notrace, such
 * as `__do_sys_newuname` behind SYSCALL_DEFINE1; or a notrace function) is handled the way an
 * inlined function is: the patch carries its new copy, and every function that calls it changes
 * too, so that the patched callers (each with its ftrace hook) call the new copy. The running
 * kernel's old copy stays, reached only by the old callers.
 *
 * That is only right when every way into the function goes through callers the patch can redirect:
 * the function is local to the object (no other object calls it), its address is never taken in
 * either version (no pointer reaches the old copy), and each caller can be patched or reached
 * through its own callers in turn. Anything else is DIFF_NO_FENTRY, saying which of those fails.
 * A caller in __init code is left alone: it has run, and never calls again.
 */
import type { DiffContext } from "./context.js";
import { DiffError } from "./diff-error.js";
import { hasFentryCall, type Unit } from "./object-index.js";
import { referencesTo } from "./references.js";

export function reachThroughCallers(ctx: DiffContext): void {
  const work = ctx.patched.functions.filter((u) => needsCallers(ctx, u));
  while (work.length > 0) {
    const unit = work.pop()!;
    if (ctx.carried.has(unit)) continue;
    const callers = callersOf(ctx, unit);
    ctx.carried.set(
      unit,
      [...callers.keys()].map((c) => c.sym.name),
    );
    for (const [caller, offset] of callers) {
      const status = ctx.status.get(caller);
      if (status === "same") {
        ctx.status.set(caller, "changed");
        for (const child of caller.children) ctx.status.set(child, "changed");
        ctx.why.set(caller, {
          offset,
          instruction: "",
          detail: `it calls ${unit.sym.name}, which changed and has no ftrace hook: the patch carries its new copy`,
        });
      }
      if (needsCallers(ctx, caller)) work.push(caller);
    }
  }
}

/** A changed function (not a `.cold` part) without an __fentry__ call, not yet carried. */
function needsCallers(ctx: DiffContext, u: Unit): boolean {
  return (
    ctx.status.get(u) === "changed" &&
    !u.parent &&
    ctx.patched.info.get(u.section)?.kind === "text" &&
    !ctx.carried.has(u) &&
    !hasFentryCall(u)
  );
}

/**
 * The functions that call `unit` directly (its own `.cold` parts aside), each with the offset of
 * its first call, or a refusal.
 */
function callersOf(ctx: DiffContext, unit: Unit): Map<Unit, number> {
  const name = unit.sym.name;
  const why = ctx.why.get(unit)?.detail ?? "changed";
  const refuse = (reason: string): never => {
    throw new DiffError(
      "DIFF_NO_FENTRY",
      `Cannot patch ${name}: it does not call __fentry__ (notrace, noinstr, an out-of-line static inline, or built without -pg), so ftrace cannot redirect it (${why}), and it cannot be reached through its callers instead: ${reason}`,
      { file: ctx.patched.file.path, section: unit.section.name, symbol: name },
    );
  };
  if (!unit.sym.isLocal) refuse("it is global, so code outside this object may call it");
  refuseOriginalAddressTaken(ctx, unit, refuse);
  const callers = new Map<Unit, number>();
  for (const r of referencesTo(ctx, ctx.patched, unit)) {
    if (r.kind === "pieces") continue; // its own static_cpu_has() pieces jumping back
    if (r.kind === "special" || r.kind === "companion" || r.kind === "ignored") {
      if (r.section.name.startsWith(".discard.addressable"))
        refuse(`its address is taken (${r.section.name})`);
      continue;
    }
    const from = r.from;
    if (from === unit || (from && unit.children.includes(from))) continue;
    if (r.kind === "init") continue; // __init code has run; it never calls again
    if (!r.branch || !from?.sym.isFunction) {
      refuse(
        `its address is taken (${where(r.section.name, from, r.reloc.offset)}), so it may be called through a pointer`,
      );
    }
    const caller = from!.parent ?? from!;
    if (!callers.has(caller))
      callers.set(caller, from === caller ? r.reloc.offset - Number(caller.sym.value) : 0);
  }
  if (callers.size === 0) refuse("nothing in this object calls it");
  return callers;
}

/** Refuses when the running kernel's copy of `unit` has its address taken (not just called). */
function refuseOriginalAddressTaken(ctx: DiffContext, unit: Unit, refuse: (reason: string) => never): void {
  const twin = ctx.twinOf(unit.sym);
  const orig = twin ? ctx.orig.unitOf.get(twin) : undefined;
  if (!orig) return;
  for (const r of referencesTo(ctx, ctx.orig, orig)) {
    if (r.branch || r.kind === "special" || r.kind === "companion" || r.kind === "ignored") continue;
    if (r.from === orig || orig.children.includes(r.from!)) continue;
    refuse(
      `the running kernel takes its address (${where(r.section.name, r.from, r.reloc.offset)}), so the old copy stays reachable through a pointer`,
    );
  }
}

function where(section: string, from: Unit | undefined, offset: number): string {
  if (!from) return `${section}+0x${offset.toString(16)}`;
  return `${from.sym.name}+0x${(offset - Number(from.sym.value)).toString(16)}`;
}
