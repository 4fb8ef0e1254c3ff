/**
 * A binary Debian package built with dpkg-deb from files in memory: the staging tree, md5sums,
 * Installed-Size, the control file and maintainer scripts, files owned by root. The .deb is
 * written under a temporary name beside its target and renamed: complete or absent. Used by
 * kpatch package (src/debian/patch-package.ts) and the package of kpatch-ts itself.
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { syncDir } from "../util/atomic-write.js";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
import { checkPackageName, checkPackageVersion } from "./debian-package.js";

export interface DebFile {
  /** Absolute path in the installed system. */
  path: string;
  data: Uint8Array | string;
  /** Default 0644. */
  mode?: number;
}

export interface DebSpec {
  name: string;
  version: string;
  architecture: string;
  /** Control fields after Package, Version, Architecture and Installed-Size, in order. */
  fields: [string, string][];
  files: DebFile[];
  /** Maintainer scripts by name (postinst, prerm, postrm). */
  scripts: Record<string, string>;
  conffiles?: string[];
  outDir: string;
  /** dpkg-deb's compressor (default xz; none for a large binary only ever installed locally). */
  compression?: "xz" | "none";
}

/** NAME_MAX: the longest file name Linux file systems take, in bytes. */
const NAME_MAX = 255;

/** Builds the package into outDir; its path. */
export async function buildDeb(spec: DebSpec): Promise<string> {
  const name = checkPackageName(spec.name);
  const version = checkPackageVersion(spec.version);
  const file = `${name}_${version.replace(/^[0-9]+:/, "")}_${spec.architecture}.deb`;
  if (Buffer.byteLength(file) > NAME_MAX) {
    throw new KpatchError(
      "DEBIAN_BAD_NAME",
      `Cannot build ${name} ${version}: its .deb file name would be ${Buffer.byteLength(file)} bytes, over the ${NAME_MAX} a file name may have (shorten the name or the version)`,
    );
  }
  mkdirSync(spec.outDir, { recursive: true });
  const deb = join(spec.outDir, file);
  const stage = mkdtempSync(join(spec.outDir, `.${name}-`));
  try {
    const root = join(stage, "root");
    for (const f of spec.files) {
      mkdirSync(join(root, f.path, ".."), { recursive: true, mode: 0o755 });
      writeFileSync(join(root, f.path), f.data);
      chmodSync(join(root, f.path), f.mode ?? 0o644);
    }
    const control = join(root, "DEBIAN");
    mkdirSync(control, { mode: 0o755 });
    const size = spec.files.reduce((n, f) => n + Buffer.byteLength(f.data), 0);
    const fields: [string, string][] = [
      ["Package", name],
      ["Version", version],
      ["Architecture", spec.architecture],
      ["Installed-Size", String(Math.ceil(size / 1024))],
      ...spec.fields,
    ];
    writeFileSync(join(control, "control"), fields.map(([k, v]) => `${k}: ${v}\n`).join(""));
    const md5 = (data: Uint8Array | string) => createHash("md5").update(data).digest("hex");
    const md5sums = spec.files.filter((f) => !spec.conffiles?.includes(f.path));
    writeFileSync(
      join(control, "md5sums"),
      md5sums.map((f) => `${md5(f.data)}  ${f.path.slice(1)}\n`).join(""),
    );
    if (spec.conffiles?.length)
      writeFileSync(join(control, "conffiles"), spec.conffiles.map((c) => `${c}\n`).join(""));
    for (const [script, text] of Object.entries(spec.scripts)) {
      writeFileSync(join(control, script), text);
      chmodSync(join(control, script), 0o755);
    }
    const tmp = join(stage, "out.deb");
    const r = await exec("dpkg-deb", [
      "--root-owner-group",
      `-Z${spec.compression ?? "xz"}`,
      "--build",
      root,
      tmp,
    ]);
    if (r.code !== 0)
      throw new KpatchError(
        "DEBIAN_PACKAGE_FAILED",
        `Cannot build ${name}: dpkg-deb: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`}`,
      );
    renameSync(tmp, deb);
    syncDir(spec.outDir);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return deb;
}

/** SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
export function buildDate(): Date {
  const epoch = Number(process.env["SOURCE_DATE_EPOCH"]);
  return Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000) : new Date();
}

/** A one-entry Debian changelog, gzipped at -9 as Policy 12.7 asks. */
export function changelogGz(name: string, version: string, maintainer: string, entry: string[]): Uint8Array {
  const text = `${name} (${version}) unstable; urgency=medium

  * ${entry.join("\n    ")}

 -- ${maintainer}  ${buildDate().toUTCString().replace("GMT", "+0000")}
`;
  return gzipSync(text, { level: 9 });
}

/** Words in lines of at most 79 characters, each indented by one space (a description's body). */
export function wrapDescription(text: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > 78) {
      lines.push(line);
      line = "";
    }
    line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l) => ` ${l}`).join("\n");
}

const MAINTAINER = /^[^<>\n]+ <[^<>@\s]+@[^<>\s]+>$/;

/** The Maintainer: given, or DEBFULLNAME and DEBEMAIL as Debian's tools read them. */
export function maintainerOf(given: string | undefined): string {
  const email = process.env["DEBEMAIL"]?.trim();
  const name = process.env["DEBFULLNAME"]?.trim();
  const m = given ?? (email && (email.includes("<") || !name ? email : `${name} <${email}>`));
  if (!m)
    throw new KpatchError(
      "DEBIAN_BAD_NAME",
      "Cannot build a package without a maintainer: give --maintainer 'Name <email>' or set DEBEMAIL",
    );
  if (!MAINTAINER.test(m))
    throw new KpatchError("DEBIAN_BAD_NAME", `Cannot use maintainer '${m}': not 'Full Name <email>'`);
  return m;
}

/** The GPL-2.0-only stanza of a machine-readable debian/copyright (both packages are GPL-2.0-only). */
export const GPL2_STANZA = `License: GPL-2.0-only
 This program is free software; you can redistribute it and/or modify it under
 the terms of the GNU General Public License version 2 as published by the
 Free Software Foundation.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 2 can be found in '/usr/share/common-licenses/GPL-2'.
`;
