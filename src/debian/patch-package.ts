/**
 * A live patch module wrapped in a Debian package (kpatch package), made with dpkg-deb:
 *
 *   kpatch-patch-<patch>-<kernel release>_<version>_<arch>.deb
 *     /usr/lib/kpatch-ts/patches/<KVER>/<module>.ko    the module, as built (and signed)
 *     /usr/share/doc/<package>/{copyright,changelog.gz}
 *     DEBIAN/{control,md5sums,postinst,prerm,postrm}   (src/debian/patch-scripts.ts)
 *
 * It depends on exactly that kernel's image package (linux-image-KVER, or its -unsigned build;
 * with imageVersion, only that build of it, as Debian can rebuild a release under one name)
 * and on kpatch-ts (the kpatch command the scripts run). The patch name and the kernel release
 * are checked as a module name and a release before they reach a path or a script; the package
 * name and version against Debian's rules. The .deb is written under a temporary name and
 * renamed: it is complete or absent.
 */
import { EM_X86_64 } from "../elf/constants.js";
import { checkKernelRelease } from "../kernel/kernel-paths.js";
import { readModuleFile, vermagicRelease } from "../kernel/modinfo.js";
import { checkPatchModule } from "../kernel/patch-ops.js";
import { KpatchError } from "../util/errors.js";
import { checkModuleName } from "../util/module-name.js";
import { escapeControl } from "../util/printable.js";
import { buildDate, buildDeb, changelogGz, GPL2_STANZA, maintainerOf, wrapDescription } from "./deb-build.js";
import { checkPackageName, checkPackageVersion } from "./debian-package.js";
import { type PatchScriptValues, postinst, postrm, prerm } from "./patch-scripts.js";

export interface PatchPackageOptions {
  /** The built live patch module (.ko). */
  module: string;
  /** The kernel it patches; by default the release its vermagic names (and it must match). */
  kernelRelease?: string | undefined;
  /** The patch's name in the package name; by default the module's name. */
  patchName?: string | undefined;
  /**
   * The kernel image package's exact Debian version (6.12.117-1~deb12u1): the package then
   * depends on that build only. Default: any build of linux-image-KVER.
   */
  imageVersion?: string | undefined;
  /** The package version (Debian syntax); default 1. */
  version?: string | undefined;
  /** "Name <email>"; by default DEBFULLNAME and DEBEMAIL, as Debian's tools read them. */
  maintainer?: string | undefined;
  /** Where the .deb is written. */
  outDir: string;
}

export interface PatchPackage {
  name: string;
  version: string;
  architecture: string;
  kernelRelease: string;
  /** The module name (as /proc/modules and /sys/kernel/livepatch show it). */
  patch: string;
  deb: string;
}

const KPATCH_PACKAGE = "kpatch-ts";

/** kpatch-patch-<patch>-<release>, in Debian's alphabet: lower case, '_' and '~' read as '-'. */
export function patchPackageName(patchName: string, kernelRelease: string): string {
  const patch = checkModuleName(patchName, "the patch name");
  const release = checkKernelRelease(kernelRelease);
  return checkPackageName(`kpatch-patch-${patch}-${release}`.toLowerCase().replace(/[_~]/g, "-"));
}

/** The Depends: field: the kernel's image package (that build, given its version), then kpatch-ts. */
export function patchDepends(kernelRelease: string, imageVersion?: string): string {
  const release = checkKernelRelease(kernelRelease);
  const exactly = imageVersion === undefined ? "" : ` (= ${checkPackageVersion(imageVersion)})`;
  return `linux-image-${release}${exactly} | linux-image-${release}-unsigned${exactly}, ${KPATCH_PACKAGE}`;
}

/** Builds the package; throws (nothing written) on a module that cannot be packaged. */
export async function buildPatchPackage(options: PatchPackageOptions): Promise<PatchPackage> {
  const { elf, info, bytes } = readModuleFile(options.module);
  const kernelRelease = checkKernelRelease(options.kernelRelease ?? vermagicRelease(info.vermagic ?? ""));
  checkPatchModule(info, kernelRelease);
  if (elf.machine !== EM_X86_64)
    throw new KpatchError("DEBIAN_PACKAGE_FAILED", `Cannot package ${options.module}: not an x86-64 module`);
  const patch = checkModuleName(info.name, `${options.module}'s module name`);
  const name = patchPackageName(options.patchName ?? patch, kernelRelease);
  const version = checkPackageVersion(options.version ?? "1");
  const maintainer = maintainerOf(options.maintainer);
  const architecture = "amd64";
  const moduleDir = `/usr/lib/kpatch-ts/patches/${kernelRelease}`;
  const values: PatchScriptValues = {
    package: name,
    kernelRelease,
    patch,
    module: `${moduleDir}/${patch}.ko`,
  };

  const deb = await buildDeb({
    name,
    version,
    architecture,
    fields: controlFields(values, maintainer, info.description, options.imageVersion),
    files: [
      { path: values.module, data: bytes },
      { path: `/usr/share/doc/${name}/copyright`, data: copyright(values, info.license, maintainer) },
      {
        path: `/usr/share/doc/${name}/changelog.gz`,
        data: changelogGz(name, version, maintainer, [
          `Live patch ${patch}`,
          `for Linux ${kernelRelease}`,
          "(kpatch package).",
        ]),
      },
    ],
    scripts: { postinst: postinst(values), prerm: prerm(values), postrm: postrm(values) },
    outDir: options.outDir,
  });
  return { name, version, architecture, kernelRelease, patch, deb };
}

function controlFields(
  v: PatchScriptValues,
  maintainer: string,
  description: string | undefined,
  imageVersion: string | undefined,
): [string, string][] {
  const about =
    description === undefined ? undefined : escapeControl(description.replace(/\s+/g, " ").trim());
  return [
    ["Maintainer", maintainer],
    ["Depends", patchDepends(v.kernelRelease, imageVersion)],
    ["Section", "kernel"],
    ["Priority", "optional"],
    [
      "Description",
      `live patch ${v.patch} (kpatch)
 The live patch module
 ${v.patch},
 built with kpatch-build (kpatch-ts) for the kernel
 ${v.kernelRelease}.
 Installing it keeps the module for that kernel (kpatch install) and, on a
 machine running that kernel, loads it live; removing it unloads it live and
 uninstalls it.${about ? `\n .\n${wrapDescription(`Module description: ${about}`)}` : ""}`,
    ],
  ];
}

function copyright(v: PatchScriptValues, license: string | undefined, maintainer: string): string {
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Comment: The live patch module ${v.patch} for Linux ${v.kernelRelease}, built from a
 patch to the Linux kernel with kpatch-build (kpatch-ts). Its modinfo license: ${license === undefined ? "none" : escapeControl(license)}.

Files: *
Copyright: ${year()} ${maintainer}, and the Linux kernel's authors
License: GPL-2.0-only

${GPL2_STANZA}`;
}

function year(): number {
  return buildDate().getUTCFullYear();
}
