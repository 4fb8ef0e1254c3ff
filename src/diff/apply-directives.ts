/**
 * applyDirectives(): after the marking phases, act on the callbacks and KPATCH_FORCE_UNSAFE
 * (ignored changes were already left "same" by the marking phases).
 *
 * Callbacks are new code of the patch module whatever the comparison said: the livepatch core
 * calls the module's copy, never the running kernel's, so a callback is never a changed function
 * to patch, and it goes into the output even when an identical copy already exists.
 *
 * A forced function overrides two verdicts, each with a warning:
 *  - "same": a function the differ finds unchanged, or whose differences it takes for moved line
 *    numbers, is patched anyway;
 *  - DIFF_INIT_CHANGED for the function itself: a changed __init function is accepted, and its
 *    change dropped (the code has run and been freed; the running kernel never runs it again).
 * It does not override DIFF_NO_FENTRY, DIFF_DATA_CHANGED, DIFF_IBT_SEALED, a reference to new
 * __init code, or any other refusal: each would make a patch that fails to load or faults.
 */
import type { DiffContext } from "./context.js";
import { FORCE_UNSAFE } from "./directives.js";
import type { Unit } from "./object-index.js";

export function applyDirectives(ctx: DiffContext): void {
  for (const { kind, unit } of ctx.directives.callbacks) {
    if (ctx.status.get(unit) === "changed") {
      ctx.warn(
        `${unit.sym.name}, the ${kind} callback, also exists in the running kernel and changed: the patch calls its own copy, the running kernel's callers keep the original`,
      );
    }
    setStatus(ctx, unit, "new");
  }
  for (const unit of ctx.directives.forced) force(ctx, unit);
}

function force(ctx: DiffContext, unit: Unit): void {
  const name = unit.sym.name;
  const status = ctx.status.get(unit);
  const init = ctx.patched.info.get(unit.section)?.kind === "init";
  let did: string;
  if (status === "new") did = "no effect: the function is new, so it is in the patch anyway";
  else if (init && status === "changed") {
    setStatus(ctx, unit, "same");
    did = `its change is not patched (an __init function has run and been freed): accepted instead of DIFF_INIT_CHANGED (${ctx.why.get(unit)?.detail ?? "changed"})`;
    ctx.why.delete(unit);
  } else if (init) did = "no effect: an unchanged __init function";
  else if (status === "same") {
    setStatus(ctx, unit, "changed");
    ctx.why.set(unit, {
      offset: 0,
      instruction: "",
      detail: `${FORCE_UNSAFE}: patched though the differ found no change`,
    });
    did = "patched though the differ found no change";
  } else did = "patched (it changed; nothing to override)";
  ctx.forced.set(name, did);
  ctx.warn(`${FORCE_UNSAFE}(${name}): ${did}`);
}

/** Sets the status of a function and of its `.cold` parts. */
function setStatus(ctx: DiffContext, unit: Unit, status: "same" | "changed" | "new"): void {
  ctx.status.set(unit, status);
  for (const child of unit.children) ctx.status.set(child, status);
}
