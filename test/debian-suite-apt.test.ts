/**
 * apt for another Debian release's suite from this machine, through a private state in the
 * cache (src/debian/apt-state.ts): on a Debian 12 host, Debian 13's newest kernel is found in
 * trixie/trixie-security, its packages are named by the release kpatch-build is given, and
 * this machine's own apt configuration and lists are not changed (its apt still does not know
 * that kernel). Needs the network to Debian's mirrors (skipped saying so without it).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { hostCodename } from "../src/debian/apt-sources.js";
import { parseRelease, releasePackages } from "../src/debian/kernel-release.js";
import { escapeRegExp } from "../src/util/escape-regexp.js";
import { exec } from "../src/util/exec.js";
import { newestDebianKernel } from "./helpers/debian-suites.js";

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
  const newest = await newestDebianKernel(13);
  if ("skip" in newest) return t.skip(newest.skip);
  const { apt, version } = newest;
  assert.ok(apt.options.length > 0, `${apt.label}: a private state, not this machine's apt`);
  const image = releasePackages(parseRelease(newest.kernelRelease)).image;
  const rows = (await exec("apt-cache", [...apt.options, "madison", image])).stdout;
  assert.match(rows, new RegExp(`\\| ${escapeRegExp(version)} \\| \\S+ trixie(-security)?/main`), rows);
  const hostRows = (await exec("apt-cache", ["madison", image])).stdout;
  assert.equal(hostRows.trim(), "", `this machine's apt does not know ${image}`);
  assert.equal(hostAptDigest(), before, "this machine's apt configuration is as before");
});
