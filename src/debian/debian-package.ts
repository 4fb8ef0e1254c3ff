/**
 * Debian packages kept in the cache, downloaded once with apt and unpacked once with dpkg-deb, for
 * the stock-kernel work (images, headers, sources) shared by kpatch-build and the lab:
 *
 *   <cache>/debian/pool/<package>_<version>.deb     the package as apt fetched it
 *   <cache>/debian/<package>_<version>/             its files (dpkg-deb -x), complete or absent
 *
 * Names and versions are checked against Debian's syntax before they reach a path or a command
 * line; the downloaded .deb must say it is that package at that version. Every step writes to a
 * temporary name and renames, so two processes fetching the same package at once both end with
 * the one complete copy.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { syncDir } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";

export interface DebianPackage {
  name: string;
  version: string;
  /** The .deb in the cache's pool. */
  deb: string;
  /** The directory its files are unpacked in (boot/, lib/modules/, usr/src/, ...). */
  root: string;
}

/** Debian policy 5.6.1: lower case letters, digits, + - . ; at least two characters, alphanumeric first. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** Debian policy 5.6.12: [epoch:]upstream[-revision], letters digits . + ~ - (and : after an epoch). */
const PACKAGE_VERSION = /^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$/;

export function checkPackageName(name: string): string {
  if (!PACKAGE_NAME.test(name) || name.length > 200)
    throw new KpatchError("DEBIAN_BAD_NAME", `Cannot use package name '${name}': not a Debian package name`);
  return name;
}

export function isPackageVersion(version: string): boolean {
  return PACKAGE_VERSION.test(version) && version.length <= 200;
}

export function checkPackageVersion(version: string): string {
  if (!isPackageVersion(version))
    throw new KpatchError("DEBIAN_BAD_NAME", `Cannot use package version '${version}': not a Debian version`);
  return version;
}

/** `<package>_<version>` as a file name (an epoch's ':' spelled %3a, as apt does). */
function packageKey(name: string, version: string): string {
  return `${checkPackageName(name)}_${checkPackageVersion(version).replace(":", "%3a")}`;
}

function debianDir(): string {
  return cachePath("debian");
}

/** The cached package, or undefined when it has not been fetched and unpacked. */
export function findDebianPackage(name: string, version: string): DebianPackage | undefined {
  const key = packageKey(name, version);
  const pkg = { name, version, deb: join(debianDir(), "pool", `${key}.deb`), root: join(debianDir(), key) };
  return existsSync(pkg.root) && existsSync(pkg.deb) ? pkg : undefined;
}

/**
 * The package `name` at exactly `version`, downloaded (apt-get download) and unpacked into the
 * cache unless it is there already. Throws DEBIAN_DOWNLOAD_FAILED when apt cannot fetch it and
 * DEBIAN_WRONG_PACKAGE when what it fetched is not that package at that version.
 */
export async function fetchDebianPackage(
  name: string,
  version: string,
  /** apt-get's options for the package's suite (apt-state.ts; default this machine's apt). */
  aptOptions: readonly string[] = [],
): Promise<DebianPackage> {
  const key = packageKey(name, version);
  const pool = join(debianDir(), "pool");
  const deb = join(pool, `${key}.deb`);
  const root = join(debianDir(), key);
  mkdirSync(pool, { recursive: true });
  if (!existsSync(deb)) await download({ name, version, aptOptions }, pool, deb);
  if (!existsSync(root)) await unpack(deb, root);
  return { name, version, deb, root };
}

async function download(
  pkg: { name: string; version: string; aptOptions: readonly string[] },
  pool: string,
  deb: string,
): Promise<void> {
  const { name, version } = pkg;
  const tmp = mkdtempSync(join(pool, ".download-"));
  try {
    // apt's sandbox user cannot write to root's cache: download as the caller.
    const r = await exec(
      "apt-get",
      ["-o", "APT::Sandbox::User=root", ...pkg.aptOptions, "download", `${name}=${version}`],
      {
        cwd: tmp,
      },
    );
    const files = readdirSync(tmp).filter((f) => f.endsWith(".deb"));
    if (r.code !== 0 || files.length !== 1) {
      const why = r.stderr.trim().split("\n").pop() ?? `apt-get exited with ${r.code}`;
      throw new KpatchError("DEBIAN_DOWNLOAD_FAILED", `Cannot download ${name}=${version}: ${why}`);
    }
    const got = join(tmp, files[0]!);
    await checkDeb(got, name, version);
    renameSync(got, deb);
    syncDir(pool);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Throws DEBIAN_WRONG_PACKAGE unless the .deb's control fields name `name` at `version`. */
async function checkDeb(deb: string, name: string, version: string): Promise<void> {
  const r = await exec("dpkg-deb", ["--field", deb, "Package", "Version"]);
  const fields = Object.fromEntries(
    r.stdout
      .split("\n")
      .map((l) => /^(\w+):\s*(.*)$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => [m[1]!, m[2]!.trim()]),
  );
  if (r.code !== 0 || fields["Package"] !== name || fields["Version"] !== version) {
    const got = r.code === 0 ? `${fields["Package"]}=${fields["Version"]}` : "not a Debian package";
    throw new KpatchError(
      "DEBIAN_WRONG_PACKAGE",
      `Cannot use ${deb}: expected ${name}=${version}, it is ${got}`,
    );
  }
}

async function unpack(deb: string, root: string): Promise<void> {
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const r = await exec("dpkg-deb", ["-x", deb, tmp]);
    if (r.code !== 0) {
      throw new KpatchError(
        "DEBIAN_DOWNLOAD_FAILED",
        `Cannot unpack ${deb}: ${r.stderr.trim() || `exit ${r.code}`}`,
      );
    }
    try {
      renameSync(tmp, root);
    } catch (e) {
      // Another process unpacked it meanwhile: theirs is complete, keep it.
      if (!existsSync(root)) throw e;
    }
    syncDir(join(root, ".."));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
