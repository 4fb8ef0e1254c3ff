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

/** `kpatch-lab run --distro SERIES --release KVER`: it boots that kernel (uname -r), then `command`. */
async function bootRelease(series: string, release: string, command: string) {
  const r = await cli(
    "kpatch-lab",
    "run",
    "--distro",
    series,
    "--release",
    release,
    "--",
    "uname -r",
    command,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^\\$ uname -r\\n${release.replace(/[.+]/g, "\\$&")}\\n`, "m"));
  return r;
}

test(`kpatch-lab setup and run --distro 6.12 --release ${RELEASE} boot exactly that packaged kernel`, async () => {
  const before = findDistroLab("6.12")?.dir;
  const setup = await cli("kpatch-lab", "setup", "--distro", "6.12", "--release", RELEASE);
  assert.equal(setup.code, 0, setup.stderr);
  assert.match(setup.stderr, new RegExp(`Linux ${RELEASE.replace(/[.+]/g, "\\$&")} \\(linux-image-`));
  const lab = findDistroLab("6.12", { kernelRelease: RELEASE });
  assert.equal(lab?.kernelRelease, RELEASE);
  assert.equal(findDistroLab("6.12")?.dir, before, "the series' default kernel is left as it was");

  const r = await bootRelease("6.12", RELEASE, "cat /proc/version");
  // The image's own Debian version, as the running kernel says it.
  assert.match(r.stdout, new RegExp(`Debian ${lab!.sourceVersion.replace(/[.+~]/g, "\\$&")}`));
});

/**
 * A 6.1 release whose kbuild package is gone from apt: one linux-kbuild-6.1 serves every 6.1 ABI
 * name and the next update replaced it (6.1.0-54's 6.1.190-1), though its image and headers are
 * still offered. The lab boots it all the same; only the headers tree and the sample are skipped.
 */
const OLD_61 = "6.1.0-54-amd64";

test(`kpatch-lab setup --distro 6.1 --release ${OLD_61}: boots without its gone kbuild package, the sample skipped saying why`, async (t) => {
  const setup = await cli("kpatch-lab", "setup", "--distro", "6.1", "--release", OLD_61);
  assert.equal(setup.code, 0, setup.stderr);
  const lab = findDistroLab("6.1", { kernelRelease: OLD_61 });
  assert.equal(lab?.kernelRelease, OLD_61);
  const kbuild = `linux-kbuild-6.1=${lab!.sourceVersion}`;
  const madison = await run("apt-cache", ["madison", "linux-kbuild-6.1"]);
  const offered = madison.stdout.split("\n").some((l) => l.split("|")[1]?.trim() === lab!.sourceVersion);
  if (offered) {
    assert.equal(lab!.sampleAbsent, undefined, "apt offers the kbuild: the sample is built");
    t.skip(`apt still offers ${kbuild}: nothing is missing to show`);
    return;
  }
  const notice = setup.stderr.split("\n").filter((l) => l.includes("livepatch-sample"));
  assert.equal(notice.length, 1, `one notice line: ${setup.stderr}`);
  assert.match(
    notice[0]!,
    new RegExp(
      `no headers tree and no livepatch-sample: ${kbuild.replace(/[.+]/g, "\\$&")} is gone from apt \\(it offers \\d`,
    ),
  );
  assert.match(notice[0]!, /another version's kbuild is never used/);
  assert.equal(lab!.sampleModule, undefined);
  assert.equal(lab!.headersDir, undefined);
  const info = await cli("kpatch-lab", "info", "--distro", "6.1", "--release", OLD_61);
  assert.equal(info.code, 0, info.stderr);
  assert.match(
    info.stdout,
    new RegExp(`^sample: +absent: ${kbuild.replace(/[.+]/g, "\\$&")} is gone from apt`, "m"),
  );
  assert.match(info.stdout, /^headers tree: +absent$/m);

  const r = await bootRelease("6.1", OLD_61, "cat /proc/sys/kernel/tainted");
  assert.match(r.stdout, /^\$ cat \/proc\/sys\/kernel\/tainted\n0\n/m);
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
