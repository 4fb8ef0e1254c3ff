/**
 * cloneCallbacks(): put each callback into the output as a `.kpatch_ts.callbacks.<kind>` section
 * (klp/format.ts: one pointer, relocated to the callback's copy in the output) for the module
 * generator (src/klp/callbacks.ts), which reads and removes them. Ours are copied as they are;
 * kpatch's `.kpatch.callbacks.<kind>` ({fn, objname} entries) become ours. The other directive
 * sections are never copied.
 */
import { SHF_ALLOC, SHF_WRITE, SHT_PROGBITS } from "../elf/index.js";
import { CALLBACK_POINTER_SIZE, callbackSectionName } from "../klp/format.js";
import type { DiffContext } from "./context.js";
import type { OutputBuilder } from "./output-builder.js";

export function cloneCallbacks(ctx: DiffContext, b: OutputBuilder): void {
  for (const { kind, section } of ctx.directives.callbacks) {
    const name = callbackSectionName(kind);
    if (section.name === name) {
      b.copySection(section);
      continue;
    }
    const out = b.out.addSection({
      name,
      type: SHT_PROGBITS,
      flags: SHF_ALLOC | SHF_WRITE,
      addralign: 8,
      data: new Uint8Array(CALLBACK_POINTER_SIZE),
    });
    const fn = ctx.relocsOf(section)[0]!; // readDirectives checked: one pointer at offset 0
    b.addReloc(out, section, fn, 0, name);
  }
}
