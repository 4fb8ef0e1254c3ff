import type { DescriptorKind } from "./special-kind.js";

/**
 * Dynamic debug descriptors (struct _ddebug, <linux/dynamic_debug.h>): one per pr_debug(),
 * dev_dbg(), netdev_dbg()... site, a static object the site's code passes to __dynamic_pr_debug()
 * and whose static key (inside it) the site's __jump_table entry names. The patch module carries
 * a copy of each descriptor its code uses: ddebug_add_module() lists them under the patch module
 * in /proc/dynamic_debug/control, where they are enabled like any other.
 *
 * Every layout since 2.6.x starts with four pointers (modname, function, filename, format) and
 * then `unsigned int lineno:18`, the low bits of the 32-bit word at offset 32: a site whose line
 * moved is the same site.
 */
const LINE = { offset: 32, bits: 18 };

export const dyndbgDescriptors: DescriptorKind = {
  name: "__dyndbg",
  line: LINE,
  why: "dynamic debug descriptors: ddebug_add_module() registers them when the module loads",
};

/** The same table before 5.x kernels renamed it (RHEL 8's 4.18). */
export const verboseDescriptors: DescriptorKind = {
  name: "__verbose",
  line: LINE,
  why: "dynamic debug descriptors (older kernels' name): ddebug_add_module() registers them",
};

/**
 * Tables of the running kernel that a patch cannot change, by name, with why: an unchanged one is
 * left alone, a changed one refused with this reason (verify-changes.ts).
 */
export const FIXED_TABLES: readonly { name: string; why: string }[] = [
  {
    name: "__dyndbg_classes",
    why: "dynamic debug class maps (DECLARE_DYNDBG_CLASSMAP), which ddebug_add_module() attaches to their module once, when it loads",
  },
];

/**
 * The class of a descriptor (6.1+: `class_id:6` after `lineno:18`), when the object has class
 * maps at all; 63 (_DPRINTK_CLASS_DFLT) is no class.
 */
export function descriptorClass(data: Uint8Array, start: number): number {
  const word = new DataView(data.buffer, data.byteOffset + start + LINE.offset, 4).getUint32(0, true);
  return (word >>> LINE.bits) & 0x3f;
}
export const NO_CLASS = 63;
