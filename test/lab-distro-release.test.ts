/**
 * Any packaged release in the lab (issue 19, part 3): `kpatch-lab setup --distro 6.12 --release
 * KVER` sets up exactly that packaged kernel (its image and headers at the version apt offers
 * for that name; downloaded once into the cache), `kpatch-lab run --distro 6.12 --release KVER`
 * boots it, and the series' default (the installed linux-source's release) is left as it was.
 * kpatch-build refuses the -rt flavour up front, saying why; the options are checked first.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { findDistroLab } from "../src/lab/distro.js";

const run = promisify(execFile);
const bin = join(import.meta.dirname, "..", "src", "cli");
/** A release of 6.12 older than the installed source's (the suite keeps 6.12.107 to 6.12.118). */
const RELEASE = "6.12.113+deb12-amd64";

async function cli(tool: string, ...args: string[]) {
  try {
    const r = await run("node", [join(bin, `${tool}.js`), ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

test(`kpatch-lab setup and run --distro 6.12 --release ${RELEASE} boot exactly that packaged kernel`, async () => {
  const before = findDistroLab("6.12")?.dir;
  const setup = await cli("kpatch-lab", "setup", "--distro", "6.12", "--release", RELEASE);
  assert.equal(setup.code, 0, setup.stderr);
  assert.match(setup.stderr, new RegExp(`Linux ${RELEASE.replace(/[.+]/g, "\\$&")} \\(linux-image-`));
  const lab = findDistroLab("6.12", { kernelRelease: RELEASE });
  assert.equal(lab?.kernelRelease, RELEASE);
  assert.equal(findDistroLab("6.12")?.dir, before, "the series' default kernel is left as it was");

  const r = await cli(
    "kpatch-lab",
    "run",
    "--distro",
    "6.12",
    "--release",
    RELEASE,
    "--",
    "uname -r",
    "cat /proc/version",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^\\$ uname -r\\n${RELEASE.replace(/[.+]/g, "\\$&")}\\n`, "m"));
  // The image's own Debian version, as the running kernel says it.
  assert.match(r.stdout, new RegExp(`Debian ${lab!.sourceVersion.replace(/[.+~]/g, "\\$&")}`));
});

test("--release is checked first: it needs --distro, and a release of its series", async () => {
  const alone = await cli("kpatch-lab", "run", "--release", RELEASE, "--", "true");
  assert.equal(alone.code, 2, alone.stderr);
  assert.match(alone.stderr, /--release names a Debian kernel: it needs --distro SERIES/);
  const other = await cli("kpatch-lab", "info", "--distro", "6.1", "--release", RELEASE);
  assert.equal(other.code, 1, other.stderr);
  assert.match(
    other.stderr,
    /Cannot use 6\.12\.113\+deb12-amd64 as a 6\.1 kernel: it is a 6\.12 release \[DISTRO_BAD_RELEASE\]/,
  );
  const arm = await cli("kpatch-lab", "info", "--distro", "6.12", "--release", "6.12.113+deb12-arm64");
  assert.equal(arm.code, 1, arm.stderr);
  assert.match(arm.stderr, /\[DISTRO_BAD_RELEASE\]$/m);
});

test("kpatch-build refuses the -rt flavour up front: linux-source lacks the RT featureset's patches", async () => {
  const patch = join(import.meta.dirname, "..", "..", "test", "fixtures", "patches", "6.12", "cmdline.patch");
  const started = performance.now();
  const r = await cli("kpatch-build", "--kernel-release", "6.12.117+deb12-rt-amd64", patch);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^kpatch-build: error: Cannot build for 6\.12\.117\+deb12-rt-amd64: Debian builds the -rt flavour with the RT featureset's patches .*linux-source-6\.12 does not contain.* \[DISTRO_CONFIG_CHANGED\]\n$/,
  );
  assert.ok(performance.now() - started < 10_000, "refused before fetching or preparing anything");
});
