/**
 * apt for a Debian suite other than this machine's own, with a private state in the cache (its
 * own sources, lists and archives; an empty dpkg status, no pinning), so that a Debian 12 build
 * host finds and fetches Debian 13's kernels without changing its apt configuration:
 *
 *   <cache>/apt/<codename>-<key>/sources.list   the suite and its security suite
 *   <cache>/apt/<codename>-<key>/lists/         apt-get update's lists (.updated: when)
 *   <cache>/apt/<codename>-<key>/cache/         apt's package cache
 *
 * On a machine of the suite's own release, its own apt is used (its lists, its pinning).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";
import { hostAptSources, hostCodename, suiteMirrors } from "./apt-sources.js";
import { waitForAptLists } from "./apt-update.js";
import type { DebianSuite } from "./kernel-release.js";

/** How apt-get and apt-cache reach a suite: the options they take (none for this machine's). */
export interface AptState {
  options: string[];
  /** The files and directories apt-cache and dpkg-query read under these options (apt-answers.ts). */
  inputs: string[];
  /** For messages: "this machine's apt" or "apt for trixie (<dir>)". */
  label: string;
  /** Fetch the lists again (a package published since they were fetched); false for this machine's. */
  refresh: (progress: Progress) => Promise<boolean>;
}

/** What dpkg-query reads (its status, its journal of unfinished updates, its architectures, its configuration). */
const DPKG_INPUTS = ["/var/lib/dpkg/status", "/var/lib/dpkg/updates", "/var/lib/dpkg/arch", "/etc/dpkg"];

const HOST_APT: AptState = {
  options: [],
  // Its sources, pinning and configuration (/etc/apt), the lists, and dpkg's status (the candidate
  // depends on what is installed).
  inputs: ["/etc/apt", "/var/lib/apt/lists", ...DPKG_INPUTS],
  label: "this machine's apt",
  refresh: async () => false,
};

/** Lists older than this are fetched again before a lookup (security suites move daily). */
const LISTS_MAX_AGE_MS = 6 * 3600_000;
const KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** The one-line sources of `suite` from the two mirrors. */
export function suiteSources(suite: DebianSuite, mirrors: { archive: string; security: string }): string {
  return suite.suites
    .map(
      (s) =>
        `deb [signed-by=${KEYRING}] ${s.endsWith("-security") ? mirrors.security : mirrors.archive} ${s} main`,
    )
    .join("\n")
    .concat("\n");
}

/** apt for `suite`: this machine's own on a machine of that release, else a private state (lists fetched when stale). */
export async function suiteApt(suite: DebianSuite, progress: Progress): Promise<AptState> {
  const host = hostCodename();
  if (host === suite.codename) return HOST_APT;
  const sources = suiteSources(suite, suiteMirrors(hostAptSources(), host));
  const key = createHash("sha256").update(sources).digest("hex").slice(0, 12);
  const dir = cachePath("apt", `${suite.codename}-${key}`);
  const lists = join(dir, "lists");
  mkdirSync(join(lists, "partial"), { recursive: true });
  mkdirSync(join(dir, "cache", "archives", "partial"), { recursive: true });
  const sourceList = join(dir, "sources.list");
  // Rewritten only when it differs: its inode and mtime are part of the answers' fingerprint.
  if (!existsSync(sourceList) || readFileSync(sourceList, "utf8") !== sources)
    writeFileAtomic(sourceList, sources);
  const status = join(dir, "status");
  if (!existsSync(status)) writeFileSync(status, "");
  const options = [
    ["Dir::Etc::SourceList", sourceList],
    ["Dir::Etc::SourceParts", "/dev/null"],
    ["Dir::Etc::Preferences", "/dev/null"],
    ["Dir::Etc::PreferencesParts", "/dev/null"],
    ["Dir::State::Lists", lists],
    ["Dir::State::status", status],
    ["Dir::Cache", join(dir, "cache")],
    // The binary caches of the lists, kept (apt rebuilds them when the lists change): without
    // them every apt-cache run parses the lists again (~0.7 s of CPU; many hosts turn them off).
    ["Dir::Cache::pkgcache", "pkgcache.bin"],
    ["Dir::Cache::srcpkgcache", "srcpkgcache.bin"],
    // apt's sandbox user cannot write to root's cache.
    ["APT::Sandbox::User", "root"],
    ["DPkg::Lock::Timeout", "120"],
  ].flatMap(([k, v]) => ["-o", `${k}=${v}`]);
  const stamp = join(lists, ".updated");
  const update = async (p: Progress) => {
    p.update(`apt-get update for ${suite.suites.join(", ")}`);
    const r = await waitForAptLists("apt-get", [...options, "update"]);
    if (r.code !== 0 || /^(W|E): Failed to fetch/m.test(r.stderr)) {
      throw new KpatchError(
        "DEBIAN_DOWNLOAD_FAILED",
        `Cannot fetch the package lists of ${suite.suites.join(", ")} (${dir}/sources.list): ${r.stderr.trim().split("\n").pop() ?? `apt-get exited with ${r.code}`}`,
      );
    }
    writeFileSync(stamp, `${new Date().toISOString()}\n`);
    return true;
  };
  const age = existsSync(stamp) ? Date.now() - statSync(stamp).mtimeMs : Number.POSITIVE_INFINITY;
  if (age > LISTS_MAX_AGE_MS) await update(progress);
  return {
    options,
    // apt.conf.d is still read; dpkg's status is the host's for dpkg-query.
    inputs: [sourceList, lists, status, "/etc/apt/apt.conf", "/etc/apt/apt.conf.d", ...DPKG_INPUTS],
    label: `apt for ${suite.codename} (${dir})`,
    refresh: update,
  };
}
