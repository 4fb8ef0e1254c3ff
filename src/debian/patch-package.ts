/**
 * A live patch module wrapped in a Debian package (kpatch package), made with dpkg-deb. The
 * model is the one RHEL ships kpatch patches in: one package per kernel release, whose versions
 * are cumulative patch levels, each an atomic-replace module holding every fix so far:
 *
 *   kpatch-patch-<kernel release>_<level>_<arch>.deb
 *     /usr/lib/kpatch-ts/patches/<KVER>/<module>.ko    the module, as built (and signed)
 *     /usr/share/doc/<package>/{copyright,changelog.gz}
 *     DEBIAN/{control,md5sums,postinst,prerm,postrm}   (src/debian/patch-scripts.ts)
 *
 * So an upgrade replaces the patch live, a removal goes back to the unpatched kernel, and two
 * kernels' packages never touch each other: each script acts only when `uname -r` is its kernel
 * and only on its own module (the loaded module's build id, /sys/module/<name>/notes, is the
 * one it ships), so a module name used for several kernels is harmless. A module that does not
 * replace (built with -R) is refused: a level would not replace the one before it.
 *
 * It depends on exactly that kernel's image package (linux-image-KVER, or its -unsigned build;
 * with imageVersion, only that build of it, as Debian can rebuild a release under one name)
 * and on kpatch-ts (the kpatch command the scripts run). The kernel release is checked as a
 * release before it reaches a path or a script; the package name and version against Debian's
 * rules. The .deb is written under a temporary name and renamed: it is complete or absent.
 */
import { EM_X86_64 } from "../elf/constants.js";
import type { ElfFile } from "../elf/index.js";
import { checkKernelRelease } from "../kernel/kernel-paths.js";
import { readModuleFile, vermagicRelease } from "../kernel/modinfo.js";
import { findPatchMetadata } from "../kernel/patch-metadata.js";
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

/**
 * kpatch-patch-<release>, the one patch package of that kernel, in Debian's alphabet: lower
 * case, '_' and '~' read as '-' ('+' and '.' are Debian's too).
 */
export function patchPackageName(kernelRelease: string): string {
  const release = checkKernelRelease(kernelRelease);
  return checkPackageName(`kpatch-patch-${release}`.toLowerCase().replace(/[_~]/g, "-"));
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
  requireAtomicReplace(elf, options.module);
  const buildId = moduleBuildId(elf, options.module);
  const name = patchPackageName(kernelRelease);
  const version = checkPackageVersion(options.version ?? "1");
  const maintainer = maintainerOf(options.maintainer);
  const architecture = "amd64";
  const moduleDir = `/usr/lib/kpatch-ts/patches/${kernelRelease}`;
  const values: PatchScriptValues = {
    package: name,
    kernelRelease,
    patch,
    module: `${moduleDir}/${patch}.ko`,
    buildId,
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

/** Every level replaces the one before: a module that does not (built with -R), or unreadable, is refused. */
function requireAtomicReplace(elf: ElfFile, module: string): void {
  const meta = findPatchMetadata(elf);
  if (meta?.replace) return;
  throw new KpatchError(
    "DEBIAN_PACKAGE_FAILED",
    meta
      ? `Cannot package ${module}: it does not replace other patches (built with -R/--non-replace); each version of a kernel's patch package must replace the one before: build it without -R, with every fix so far`
      : `Cannot package ${module}: cannot tell whether it replaces other patches (its klp_patch could not be read); a patch package holds atomic-replace modules only`,
    { file: module },
  );
}

/** NT_GNU_BUILD_ID: the type of the GNU note holding a build id. */
const NT_GNU_BUILD_ID = 3;

/**
 * The module's GNU build id as hex (the descriptor of its .note.gnu.build-id, which
 * /sys/module/<name>/notes/ shows of the loaded module): the scripts' way to tell their own
 * module from another of the same name.
 */
function moduleBuildId(elf: ElfFile, module: string): string {
  const note = elf.sections
    .find((s) => s.name === ".note.gnu.build-id")
    ?.notes.find((n) => n.name === "GNU" && n.type === NT_GNU_BUILD_ID);
  if (!note || note.desc.length === 0) {
    throw new KpatchError(
      "DEBIAN_PACKAGE_FAILED",
      `Cannot package ${module}: it has no GNU build id (.note.gnu.build-id), so its scripts could not tell it from another module of the same name (kbuild links modules with one)`,
      { file: module },
    );
  }
  return Buffer.from(note.desc).toString("hex");
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
      `live patches for Linux ${v.kernelRelease} (kpatch)
 The cumulative live patch of the kernel
 ${v.kernelRelease},
 built with kpatch-build (kpatch-ts) as the module
 ${v.patch}:
 each version holds every fix so far and replaces the one before. Installing
 it keeps the module for that kernel (kpatch install) and, on a machine running
 that kernel, loads it live; removing it unloads it live and uninstalls it.${about ? `\n .\n${wrapDescription(`Module description: ${about}`)}` : ""}`,
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
