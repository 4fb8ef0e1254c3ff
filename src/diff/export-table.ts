/**
 * The exported symbols of a kernel tree, from kbuild's Module.symvers:
 * `<crc>\t<symbol>\t<module>\t<export type>[\t<namespace>]`, one per line.
 */

import { moduleNameOf } from "../util/module-name.js";
import { DiffError } from "./diff-error.js";

export class ExportTable {
  /** Symbol name → the module that exports it ("vmlinux" for the kernel itself). */
  readonly owners = new Map<string, string>();

  static parse(text: string, path = "Module.symvers"): ExportTable {
    const table = new ExportTable();
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === "") continue;
      const fields = line.split("\t");
      if (fields.length < 4 || !/^0x[0-9a-f]+$/i.test(fields[0]!)) {
        throw new DiffError("DIFF_BAD_INPUT", `Cannot read ${path}:${i + 1}: not a Module.symvers line`, {
          file: path,
        });
      }
      table.owners.set(fields[1]!, fields[2]!);
    }
    return table;
  }

  /**
   * True when code in a patch for `target` may refer to `name` with an ordinary relocation: it is
   * exported by vmlinux or by another module (one exported by the target module itself must go
   * through a klp relocation, so that the patch can load before the target).
   */
  reachable(name: string, target: string): boolean {
    const owner = this.owners.get(name);
    if (owner === undefined) return false;
    if (target === "vmlinux") return owner === "vmlinux";
    return moduleNameOf(owner) !== moduleNameOf(target);
  }
}
