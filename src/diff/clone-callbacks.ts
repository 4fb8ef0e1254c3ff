/**
 * cloneCallbacks(): copy each `.kpatch_ts.callbacks.<kind>` section of the patched object into
 * the output as it is (its one pointer, relocated to the callback's copy in the output), for the
 * module generator (src/klp/callbacks.ts), which reads and removes them. The other directive
 * sections are never copied.
 */
import type { DiffContext } from "./context.js";
import type { OutputBuilder } from "./output-builder.js";

export function cloneCallbacks(ctx: DiffContext, b: OutputBuilder): void {
  for (const { section } of ctx.directives.callbacks) b.copySection(section);
}
