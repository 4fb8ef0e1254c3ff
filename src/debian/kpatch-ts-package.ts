/**
 * The package of kpatch-ts itself (npm run deb), so that live patch packages can depend on the
 * kpatch command their scripts run:
 *
 *   /usr/lib/kpatch-ts/dist/src/...    the compiled JavaScript the kpatch command imports (the
 *                                      closure of dist/src/cli/kpatch.js, nothing else)
 *   /usr/lib/kpatch-ts/package.json    name, version, "type": "module"
 *   /usr/sbin/kpatch                   exec node /usr/lib/kpatch-ts/dist/src/cli/kpatch.js
 *   /usr/lib/systemd/system/           kpatch.service, kpatch-confirm.{service,timer}
 *   /etc/init.d/kpatch                 the init script (a conffile)
 *   /usr/share/man/man8/kpatch.8.gz    kpatch's usage text
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { KpatchError } from "../util/errors.js";
import { buildDate, buildDeb, changelogGz, type DebFile, GPL2_STANZA, maintainerOf } from "./deb-build.js";

const LIB = "/usr/lib/kpatch-ts";
const UNITS = ["kpatch.service", "kpatch-confirm.service", "kpatch-confirm.timer"];
/**
 * The kpatch command runs on Debian 12's own nodejs (18.20.4) and Debian 13's (20.19):
 * test/fleet-apt and test/lab-debian run it on Debian 12 (load with the /proc/kcore check, list,
 * unload, install, kpatch.service, the crash-loop guard), test/fleet-apt-trixie on Debian 13
 * (install, kpatch.service, upgrade, remove), so a Debian machine needs nothing from outside its
 * archive but the fleet's repository. Building kpatch-ts itself needs Node.js 20 (package.json).
 */
const NODEJS = "nodejs (>= 18.20)";

/** The .js files `entry` imports, directly or not (relative imports), and the npm packages. */
export function importClosure(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    const text = readFileSync(f, "utf8");
    // Static and dynamic imports, and a package loaded lazily through createRequire (iced-x86).
    const specs =
      /(?:\bfrom\s*|\bimport\s*\(?\s*|\bcreateRequire\(import\.meta\.url\)\(\s*)["']([^"']+)["']/g;
    for (const m of text.matchAll(specs)) {
      const spec = m[1]!;
      if (spec.startsWith(".")) todo.push(join(dirname(f), spec));
      else if (!spec.startsWith("node:"))
        packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .sort();
}

export async function buildKpatchTsPackage(options: {
  /** The repository (package.json, dist/, data/kpatch/, node_modules/). */
  repo: string;
  outDir: string;
  maintainer?: string | undefined;
  /** kpatch's usage text (the CLI's own), the body of the man page. */
  usage: string;
}): Promise<string> {
  const pkg = JSON.parse(readFileSync(join(options.repo, "package.json"), "utf8")) as {
    version: string;
    description: string;
  };
  const maintainer = maintainerOf(options.maintainer);
  const entry = join(options.repo, "dist", "src", "cli", "kpatch.js");
  const { files: js, packages } = importClosure(entry);
  const files: DebFile[] = js.map((f) => {
    const data = readFileSync(f);
    // The command entry points (#!/usr/bin/env node) stay executable.
    const mode = data.subarray(0, 2).toString() === "#!" ? 0o755 : 0o644;
    return { path: `${LIB}/${relative(options.repo, f)}`, data, mode };
  });
  for (const p of packages) {
    const dir = join(options.repo, "node_modules", p);
    try {
      statSync(dir);
    } catch {
      throw new KpatchError(
        "DEBIAN_PACKAGE_FAILED",
        `Cannot package kpatch-ts: its dependency ${p} is not in node_modules (npm ci)`,
      );
    }
    for (const f of filesUnder(dir))
      files.push({ path: `${LIB}/${relative(options.repo, f)}`, data: readFileSync(f) });
  }
  const data = (f: string) => readFileSync(join(options.repo, "data", "kpatch", f));
  files.push(
    {
      path: `${LIB}/package.json`,
      data: `${JSON.stringify({ name: "kpatch-ts", version: pkg.version, type: "module", license: "GPL-2.0-only" }, null, 2)}\n`,
    },
    {
      path: "/usr/sbin/kpatch",
      data: `#!/bin/sh\nexec node ${LIB}/dist/src/cli/kpatch.js "$@"\n`,
      mode: 0o755,
    },
    ...UNITS.map((u) => ({ path: `/usr/lib/systemd/system/${u}`, data: data(u) })),
    { path: "/etc/init.d/kpatch", data: data("kpatch.init"), mode: 0o755 },
    {
      path: "/usr/share/man/man8/kpatch.8.gz",
      data: gzipSync(manPage(pkg.version, options.usage), { level: 9 }),
    },
    { path: "/usr/share/doc/kpatch-ts/copyright", data: copyright(maintainer) },
    // The init script serves busybox systems too (the lab guest): no lsb-base to source.
    {
      path: "/usr/share/lintian/overrides/kpatch-ts",
      data: "kpatch-ts: init.d-script-does-not-source-init-functions [etc/init.d/kpatch]\n",
    },
    {
      path: "/usr/share/doc/kpatch-ts/changelog.gz",
      data: changelogGz("kpatch-ts", pkg.version, maintainer, [`kpatch-ts ${pkg.version} (npm run deb).`]),
    },
  );
  return buildDeb({
    name: "kpatch-ts",
    version: pkg.version,
    architecture: "all",
    fields: [
      ["Maintainer", maintainer],
      ["Depends", NODEJS],
      ["Section", "admin"],
      ["Priority", "optional"],
      [
        "Description",
        `live patching for the Linux kernel: the kpatch command
 kpatch loads, unloads, lists and installs live patch modules (the kernel's
 livepatch core), and loads the installed ones at boot (a systemd unit and an
 init script) with a crash-loop guard. Live patch packages made with
 'kpatch package' depend on it.`,
      ],
    ],
    files,
    scripts: { postinst: POSTINST, postrm: POSTRM },
    conffiles: ["/etc/init.d/kpatch"],
    outDir: options.outDir,
  });
}

// The init script registered as debhelper registers one (kpatch install enables the systemd
// units itself); not started: the patches installed for this kernel load at the next boot.
const POSTINST = `#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ]; then
	if [ -x "/etc/init.d/kpatch" ]; then
		update-rc.d kpatch defaults >/dev/null
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
fi
exit 0
`;

const POSTRM = `#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "purge" ]; then
	update-rc.d kpatch remove >/dev/null
fi
exit 0
`;

function manPage(version: string, usage: string): string {
  const body = usage.replace(/\\/g, "\\e").replace(/^([.'])/gm, "\\&$1");
  return `.TH KPATCH 8 "${buildDate().toISOString().slice(0, 10)}" "kpatch-ts ${version}" "System Administration"
.SH NAME
kpatch \\- manage live patch modules on the running Linux kernel
.SH SYNOPSIS
.nf
${body}.fi
.SH SEE ALSO
Run 'kpatch COMMAND --help' for each command.
`;
}

function copyright(maintainer: string): string {
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kpatch-ts

Files: *
Copyright: ${buildDate().getUTCFullYear()} ${maintainer}, and the kpatch-ts authors
License: GPL-2.0-only

${GPL2_STANZA}`;
}
