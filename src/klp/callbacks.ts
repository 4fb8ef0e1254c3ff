/**
 * Patch callbacks declared with kpatch-macros.h: each KPATCH_*_CALLBACK(fn) leaves an 8-byte
 * pointer to fn in a section `.kpatch_ts.callbacks.<kind>` of the differ's output (format.ts). The module
 * generator turns them into the klp_object's callbacks (for the object the source belongs to)
 * and drops the sections: they are metadata, not data of the patch.
 */
import { STB_GLOBAL, STT_FUNC } from "../elf/constants.js";
import type { ElfFile } from "../elf/elf-file.js";
import { KpatchError } from "../util/errors.js";
import {
  CALLBACK_KINDS,
  CALLBACK_POINTER_SIZE,
  type CallbackKind,
  callbackSectionKind,
  isCallbackKind,
} from "./format.js";

export type Callbacks = Partial<Record<CallbackKind, string>>;

/**
 * Reads and removes the callback sections of one output object, giving each callback function
 * a global alias `<prefix>_<kind>`. Returns kind → alias.
 */
export function takeCallbacks(object: ElfFile, prefix: string): Callbacks {
  const found: Callbacks = {};
  const sections = object.sections.filter((s) => callbackSectionKind(s.name) !== undefined);
  for (const sec of sections) {
    const kind = callbackSectionKind(sec.name)!;
    const where = { file: object.path, section: sec.name };
    if (!isCallbackKind(kind)) {
      throw new KpatchError(
        "KLP_BAD_CALLBACK",
        `Cannot use ${sec.name}: callbacks are ${CALLBACK_KINDS.join(", ")}`,
        where,
      );
    }
    const relocs = sec.rela?.relocs ?? [];
    if (relocs.length !== 1 || sec.size !== CALLBACK_POINTER_SIZE) {
      throw new KpatchError(
        "KLP_BAD_CALLBACK",
        `Cannot use ${sec.name}: one ${kind} callback per object is allowed (found ${relocs.length})`,
        where,
      );
    }
    const target = relocs[0]!.symbol;
    const fn =
      target.type === STT_FUNC ? target : object.symbolAt(target.section!, Number(relocs[0]!.addend));
    if (!fn?.section || fn.type !== STT_FUNC) {
      throw new KpatchError(
        "KLP_BAD_CALLBACK",
        `Cannot find the function the ${kind} callback points to`,
        where,
      );
    }
    const alias = `${prefix}_${kind}`;
    object.addSymbol({
      name: alias,
      type: STT_FUNC,
      bind: STB_GLOBAL,
      section: fn.section,
      value: fn.value,
      size: fn.size,
    });
    found[kind] = alias;
  }
  if (sections.length) object.removeSections(sections, { cascade: true });
  return found;
}
