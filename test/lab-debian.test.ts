/**
 * The Debian 12 guest (kpatch-lab setup --distro 6.12 --debian): debootstrap's minbase with
 * systemd and apt, booted from its ext4 image on Debian's stock kernel with systemd as PID 1,
 * the system up, Debian's own nodejs installed, and QEMU's user network reaching an
 * HTTP server on this machine (apt's own HTTP method fetches a file from it). Builds the root
 * file system when it is not cached (as root, ~1 min with the mirror reachable). The same root
 * file system boots on the lab kernel too (kpatch-lab run --kernel --debian), with the lab
 * kernel's image package (linux-image-<release>) installed in its disk copy (src/lab/debian-guest.ts,
 * made natively and cached: the second look finds the same one).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { debianGuest } from "../src/lab/debian-guest.js";
import { buildDebianRootfs, withRootDisk } from "../src/lab/debian-rootfs.js";
import { findDistroLab } from "../src/lab/distro.js";
import { type GuestResult, runGuest } from "../src/lab/guest.js";
import {
  labImagePackage,
  labImagePackageName,
  labImagePackageVersion,
} from "../src/lab/lab-image-package.js";
import { testSeries } from "../src/lab/paths.js";
import { findLab } from "../src/lab/setup.js";
import { serveDirectory } from "./helpers/http-server.js";

const distro = findDistroLab("6.12");
const skip = distro ? false : "the stock 6.12 kernel is not set up (kpatch-lab setup --distro 6.12)";

test("Debian 12 boots with systemd on the stock 6.12 kernel, node 20 installed, the host reachable over HTTP", {
  skip,
}, async (t) => {
  const started = performance.now();
  const rootfs = await buildDebianRootfs(distro!);
  t.diagnostic(
    `root file system ${Math.round(rootfs.sizeBytes / 2 ** 20)} MiB (${Math.round(performance.now() - started)} ms to find or build)`,
  );
  const dir = mkdtempSync(join(tmpdir(), "lab-debian-"));
  writeFileSync(join(dir, "hello.txt"), "hello from the host\n");
  const server = await serveDirectory(dir);
  try {
    const result = await withRootDisk({ rootfs }, (rootDisk) =>
      runGuest({
        lab: distro!,
        rootDisk: rootDisk!,
        network: true,
        timeoutMs: 300_000,
        commands: [
          "uname -r",
          "cat /proc/1/comm",
          "systemctl is-system-running --wait",
          `dpkg-query -W -f '\${Version}\\n' nodejs && node -e 'console.log(process.version)'`,
          `/usr/lib/apt/apt-helper download-file ${server.guestUrl}/hello.txt /tmp/hello.txt >/dev/null && cat /tmp/hello.txt`,
          `dpkg-query -W -f '\${Status}\\n' ${distro!.image}`,
        ],
      }),
    );
    const [release, init, running, node, http, image] = result.commands.map((c) => c.output.trim());
    assert.equal(release, distro!.kernelRelease);
    assert.equal(init, "systemd");
    assert.equal(running, "running", "no unit failed");
    const [debVersion, nodeVersion] = node!.split("\n");
    assert.equal(debVersion, rootfs.nodeVersion);
    assert.match(debVersion!, /^18\.20\.\d+\+dfsg-\S*deb12/, "Debian 12's own nodejs package");
    assert.equal(nodeVersion, `v${debVersion!.split("+")[0]}`);
    assert.equal(http, "hello from the host");
    assert.ok(
      server.requests.some((r) => r.includes("GET /hello.txt")),
      "the host's server saw the guest",
    );
    assert.equal(image, "install ok installed", "the kernel's own image package is installed");
    t.diagnostic(
      `guest run ${Math.round(result.wallMs)} ms (systemd up, commands start at ${result.guestReadyS} s uptime)`,
    );
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const lab = findLab(testSeries());
const labSkip = !lab
  ? `the ${testSeries()} lab is not set up (kpatch-lab setup)`
  : !findDistroLab(lab.series)
    ? `the stock ${lab.series} kernel is not set up (kpatch-lab setup --distro ${lab.series} --debian): its root file system is the lab guest's`
    : false;

test("the same Debian 12 boots with systemd on the lab kernel (kpatch-lab run --kernel --debian), the lab kernel's image package installed in its disk", {
  skip: labSkip,
}, async (t) => {
  await buildDebianRootfs(findDistroLab(lab!.series)!);
  const dir = mkdtempSync(join(tmpdir(), "lab-debian-"));
  writeFileSync(join(dir, "hello.txt"), "hello from the host\n");
  const server = await serveDirectory(dir);
  try {
    const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-lab.js");
    const run = spawnSync(
      "node",
      [
        cli,
        "run",
        "--kernel",
        lab!.series,
        "--debian",
        "--network",
        "--json",
        "--timeout",
        "300",
        "--",
        "uname -r",
        "cat /proc/1/comm",
        "systemctl is-system-running --wait || systemctl --failed --no-legend",
        `dpkg-query -W -f '\${Status} \${Version}\\n' ${labImagePackageName(lab!)}`,
        `/usr/lib/apt/apt-helper download-file ${server.guestUrl}/hello.txt /tmp/hello.txt >/dev/null && cat /tmp/hello.txt`,
        "ls -1 /proc/kcore /sys/kernel/debug/dynamic_debug/control",
      ],
      { encoding: "utf8", maxBuffer: 64 << 20 },
    );
    assert.equal(
      run.status,
      0,
      `kpatch-lab run exited ${run.status}: ${run.stderr}${run.stdout.slice(-4000)}`,
    );
    const result = JSON.parse(run.stdout) as GuestResult;
    const [release, init, running, image, http, files] = result.commands.map((c) => c.output.trim());
    assert.equal(result.commands.length, 6, "the commands given, no more");
    assert.equal(release, lab!.kernelRelease);
    assert.equal(init, "systemd");
    assert.equal(running, "running", "no unit failed");
    assert.match(image!, /^install ok installed \S+\+kplab1$/);
    assert.equal(http, "hello from the host");
    assert.equal(files, "/proc/kcore\n/sys/kernel/debug/dynamic_debug/control");
    t.diagnostic(
      `guest run ${Math.round(result.wallMs)} ms (systemd up, commands start at ${result.guestReadyS} s uptime)`,
    );
    // The run made the disk with the package (or found it); asking again finds that one, for this package's bytes.
    const again = performance.now();
    const { rootfs } = await debianGuest(lab!);
    assert.ok(performance.now() - again < 30_000, "the disk with the lab kernel's package is cached");
    const deb = readFileSync(await labImagePackage(lab!));
    assert.deepEqual(rootfs.addedImage, {
      name: labImagePackageName(lab!),
      version: labImagePackageVersion(lab!),
      sha256: createHash("sha256").update(deb).digest("hex"),
    });
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
