/**
 * The lab kernel as a Debian image package, linux-image-<release>: what a patch package built for
 * the lab kernel depends on (src/debian/patch-package.ts), installed in a Debian guest that boots
 * the lab kernel the way Debian's own image package is installed in one that boots the stock
 * kernel. It holds the kernel (/boot/vmlinuz-, System.map-, config-<release>) and the lab's
 * modules under /lib/modules/<release>/kernel, and runs depmod, as Debian's image packages do.
 * Made once per lab, beside its build (the lab's key covers everything in it); dpkg-deb writes
 * it under a temporary name and renames it, so it is complete or absent.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildDeb, type DebFile } from "../debian/deb-build.js";
import type { Lab } from "./setup.js";

/** The package's name: exactly what `kpatch package` makes a patch for this kernel depend on. */
export function labImagePackageName(lab: Pick<Lab, "kernelRelease">): string {
  return `linux-image-${lab.kernelRelease}`;
}

/** Its Debian version: the source package's, marked as the lab's build. */
export function labImagePackageVersion(lab: Pick<Lab, "sourceVersion">): string {
  return `${lab.sourceVersion}+kplab1`;
}

/** The lab kernel's image package (built on first use); its path. */
export async function labImagePackage(lab: Lab): Promise<string> {
  const name = labImagePackageName(lab);
  const version = labImagePackageVersion(lab);
  const deb = join(lab.dir, `${name}_${version}_amd64.deb`);
  if (existsSync(deb)) return deb;
  const rel = lab.kernelRelease;
  const files: DebFile[] = [
    { path: `/boot/vmlinuz-${rel}`, data: readFileSync(lab.bzImage) },
    { path: `/boot/System.map-${rel}`, data: readFileSync(join(lab.buildDir, "System.map")) },
    { path: `/boot/config-${rel}`, data: readFileSync(lab.config) },
  ];
  // modules.order names objects (.o); installed, as modules_install writes it, the .ko files.
  const order = readFileSync(join(lab.buildDir, "modules.order"), "utf8").replace(/\.o$/gm, ".ko");
  for (const ko of order.split("\n").filter(Boolean))
    files.push({ path: `/lib/modules/${rel}/kernel/${ko}`, data: readFileSync(join(lab.buildDir, ko)) });
  files.push({ path: `/lib/modules/${rel}/modules.order`, data: order });
  for (const f of ["modules.builtin", "modules.builtin.modinfo"])
    files.push({ path: `/lib/modules/${rel}/${f}`, data: readFileSync(join(lab.buildDir, f)) });
  return buildDeb({
    name,
    version,
    architecture: "amd64",
    fields: [
      ["Maintainer", "kpatch-ts lab <lab@kpatch-ts.invalid>"],
      ["Section", "kernel"],
      ["Priority", "optional"],
      ["Provides", "linux-image"],
      [
        "Description",
        `Linux ${rel} for the kpatch-ts lab (the lab kernel, Debian's ${lab.sourceVersion} source)`,
      ],
    ],
    files,
    scripts: {
      postinst: `#!/bin/sh\nset -e\nif [ "$1" = configure ]; then depmod -a ${rel}; fi\n`,
      // After dpkg removed the package's files, what is left of modules.* is depmod's.
      postrm: `#!/bin/sh\nset -e\nif [ "$1" = remove ] || [ "$1" = purge ]; then rm -f /lib/modules/${rel}/modules.*; fi\n`,
    },
    outDir: lab.dir,
    compression: "none",
  });
}
