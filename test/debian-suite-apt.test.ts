/**
 * apt for another Debian release's suite from this machine, through a private state in the
 * cache (src/debian/apt-state.ts): on a Debian 12 host, Debian 13's newest kernel is found in
 * trixie/trixie-security, its packages are named by the release kpatch-build is given, and
 * this machine's own apt configuration and lists are not changed (its apt still does not know
 * that kernel). Needs the network to Debian's mirrors (skipped saying so without it).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { hostCodename } from "../src/debian/apt-sources.js";
import { suiteApt } from "../src/debian/apt-state.js";
import { parseMadison, parseRelease, releasePackages, releaseSuite } from "../src/debian/kernel-release.js";
import { KpatchError } from "../src/util/errors.js";
import { exec } from "../src/util/exec.js";
import { Progress } from "../src/util/progress.js";

/** A digest of this machine's apt configuration (sources, preferences). */
function hostAptDigest(): string {
  const h = createHash("sha256");
  for (const dir of ["/etc/apt/sources.list.d", "/etc/apt/preferences.d"]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
  }
  if (existsSync("/etc/apt/sources.list")) h.update(readFileSync("/etc/apt/sources.list"));
  return h.digest("hex");
}

test("a Debian 13 kernel is found through a private apt state, this machine's apt untouched", async (t) => {
  if (hostCodename() === "trixie") return t.skip("this machine is Debian 13: its own apt serves trixie");
  const before = hostAptDigest();
  const suite = releaseSuite(parseRelease("6.12.118+deb13-amd64"));
  let apt: Awaited<ReturnType<typeof suiteApt>>;
  try {
    apt = await suiteApt(suite, new Progress({ quiet: true }));
  } catch (e) {
    if (e instanceof KpatchError && e.code === "DEBIAN_DOWNLOAD_FAILED")
      return t.skip(`no Debian mirror: ${e.message}`);
    throw e;
  }
  assert.ok(apt.options.length > 0, `${apt.label}: a private state, not this machine's apt`);
  // The newest trixie kernel: the flavour meta-package's version names it (6.12.118-1: 6.12.118+deb13).
  const meta = parseMadison(
    (await exec("apt-cache", [...apt.options, "madison", "linux-image-amd64"])).stdout,
  );
  assert.ok(meta.length > 0, "trixie's linux-image-amd64 is known");
  const newest = meta
    .map((r) => r.version)
    .sort(compareVersions)
    .at(-1)!;
  const release = parseRelease(`${newest.replace(/-[^-]*$/, "")}+deb13-amd64`);
  const image = releasePackages(release).image;
  const rows = (await exec("apt-cache", [...apt.options, "madison", image])).stdout;
  assert.match(
    rows,
    new RegExp(`\\| ${newest.replace(/[.+~]/g, "\\$&")} \\| \\S+ trixie(-security)?/main`),
    rows,
  );
  const hostRows = (await exec("apt-cache", ["madison", image])).stdout;
  assert.equal(hostRows.trim(), "", `this machine's apt does not know ${image}`);
  assert.equal(hostAptDigest(), before, "this machine's apt configuration is as before");
});

/** dpkg's order of two versions (dpkg --compare-versions answers one relation at a time). */
function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  return spawnSync("dpkg", ["--compare-versions", a, "lt", b]).status === 0 ? -1 : 1;
}
