/**
 * kpatch-build for a stock Debian kernel, end to end: each patch is built by the kpatch-build
 * command with --kernel-release for the kernel the distro lab boots (Debian's own vmlinuz, never
 * built here: kpatch-lab setup --distro SERIES), then, in one guest run on that kernel, every
 * module is loaded with `kpatch load`, its effect checked before, after, and after `kpatch unload`.
 * A refused patch leaves the source tree as it was and writes no module. A module built for
 * another release of the kernel is refused by `kpatch load` (vermagic). Series: KPATCH_LAB_SERIES
 * (6.12 by default, or 6.1); suite: KPATCH_LAB_SUITE (this machine's by default, or trixie: Debian
 * 13's newest kernel, set up with kpatch-lab setup --distro 6.12 --suite trixie, its patches
 * compiled with its gcc 14 in a build root).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { requireDistroLab } from "../src/lab/distro.js";
import { type GuestResult, runGuest } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { testSeries, testSuite } from "../src/lab/paths.js";
import { cachePath } from "../src/util/cache-dir.js";
import { CASES, type DistroCase, OTHER_RELEASE, REFUSED } from "./helpers/kpatch-build-distro-cases.js";
import { cleanTreeState, lockHolder } from "./helpers/tree-state.js";

const run = promisify(execFile);
const series = testSeries();
// scripts/test.sh sets up the test series' stock kernel: missing, it is an error, not a skip.
const lab = requireDistroLab(series, { suite: testSuite() });
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const out = mkdtempSync(join(tmpdir(), "kpatch-build-distro-"));
test.after(() => rmSync(out, { recursive: true, force: true }));

const cases = CASES[series];
const built = new Map<string, { ko: string; stdout: string }>();

async function kpatchBuild(kver: string, c: { name: string; patch: string }, dir = out) {
  try {
    const r = await run(
      "node",
      [cli, "--kernel-release", kver, "-n", `livepatch-${c.name}`, "-o", dir, "-j", "2", c.patch],
      { maxBuffer: 64 << 20 },
    );
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

test("kpatch-build --kernel-release builds every patch of the set", async () => {
  for (const c of cases) {
    const r = await kpatchBuild(lab.kernelRelease, c);
    assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
    for (const f of c.funcs)
      assert.match(r.stdout, new RegExp(`^${f}(,\\d+)?$`, "m"), `${c.name} patches ${f}`);
    built.set(c.name, { ko: join(out, `livepatch-${c.name}.ko`), stdout: r.stdout });
  }
});

test("a data change is refused: exit 2 naming the symbol, the source tree as before, no module", async () => {
  const refused = REFUSED[series];
  const srcDir = join(cachePath("src", lab.sourceVersion), `linux-source-${series}`);
  // Read holding the tree lock: other runs may be using the same Debian source tree meanwhile.
  const before = await cleanTreeState(srcDir, refused.patch);
  const dir = mkdtempSync(join(tmpdir(), "kpatch-build-distro-refused-"));
  try {
    const r = await kpatchBuild(lab.kernelRelease, refused, dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, refused.message);
    assert.equal(await cleanTreeState(srcDir, refused.patch), before, `${refused.file} is as before`);
    const holder = lockHolder(srcDir);
    assert.ok(holder === undefined || alive(holder), "our run left no lock behind");
    assert.deepEqual(readdirSync(dir), [], "no module written");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A module of the image, decompressed into the output directory (busybox insmod reads plain .ko). */
async function imageModule(path: string): Promise<string> {
  const to = join(out, basename(path));
  const xz = `${path}.xz`;
  await run("sh", ["-c", existsSync(xz) ? 'xz -dc -- "$1" > "$2"' : 'cp -- "$0" "$2"', path, xz, to]);
  return to;
}

/** Commands of one case: probes around kpatch load and kpatch unload (and the case's own steps). */
function steps(c: DistroCase): string[] {
  const mod = `livepatch_${c.name.replace(/-/g, "_")}`;
  return [
    ...(c.setup ?? []),
    `echo "@@case ${c.name} before"; ${c.probe}`,
    `kpatch load livepatch-${c.name}.ko`,
    `echo "@@case ${c.name} after"; ${c.probe}`,
    ...(c.during ?? []),
    `kpatch unload ${mod}`,
    `echo "@@case ${c.name} unloaded"; ${c.probe}`,
    ...(c.teardown ?? []),
  ];
}

let guest: GuestResult | undefined;

test("in the guest on the stock kernel: each module loads with kpatch load, patches, unloads, no Call Trace", async () => {
  assert.equal(built.size, cases.length, "every module was built");
  const kpatch = await kpatchInGuest(lab);
  const modules = await Promise.all(
    cases.flatMap((c) => c.modules ?? []).map((m) => imageModule(join(lab.modulesDir, "kernel", m))),
  );
  const files = [kpatch.file, ...[...built.values()].map((b) => b.ko), ...modules];
  guest = await runGuest({
    lab: lab,
    shareHost: true,
    files,
    commands: [kpatch.setup, ...cases.flatMap(steps), "kpatch list"],
    timeoutMs: 900_000,
    memoryMb: 1024,
  });
  for (const r of guest.commands) {
    if (/^kpatch (load|unload)/.test(r.command)) assert.equal(r.exitCode, 0, `${r.command}:\n${r.output}`);
  }
  assert.doesNotMatch(guest.kernelLog, /Call Trace/, "no Call Trace in the kernel log");
  assert.doesNotMatch(guest.commands.at(-1)!.output, /livepatch_/, "nothing left loaded");
});

for (const c of cases) {
  test(`${c.name}: old before, new after kpatch load, old after kpatch unload`, () => {
    assert.ok(guest, "the guest ran");
    const output = (when: string) =>
      guest!.commands
        .find((r) => r.command.startsWith(`echo "@@case ${c.name} ${when}"`))
        ?.output.replace(/^@@case [^\n]*\n/, "") ?? "";
    assert.match(output("before"), c.old, "before");
    assert.match(output("after"), c.new, "after kpatch load");
    assert.match(output("unloaded"), c.old, "after kpatch unload");
    for (const re of c.log ?? []) assert.match(guest!.kernelLog, re);
    if (c.loadedAfter) {
      const step = guest!.commands.find((r) => r.command.includes('echo "@@loaded-after"'));
      assert.match(step?.output ?? "", c.loadedAfter, "the module loaded while the patch is in is patched");
    }
  });
}

const other = OTHER_RELEASE[series];
test("a module built for another release is refused by kpatch load (vermagic)", {
  skip: other ? false : `no other ${series} release is compared (6.12's is 6.12.115)`,
}, async () => {
  if (!other) return;
  const dir = mkdtempSync(join(tmpdir(), "kpatch-build-distro-other-"));
  try {
    const r = await kpatchBuild(other.kver, { name: "other", patch: other.patch }, dir);
    assert.equal(r.code, 0, r.stderr);
    const kpatch = await kpatchInGuest(lab);
    const g = await runGuest({
      lab: lab,
      shareHost: true,
      files: [kpatch.file, join(dir, "livepatch-other.ko")],
      commands: [kpatch.setup, "kpatch load livepatch-other.ko", "kpatch list"],
    });
    const load = g.commands[1]!;
    assert.equal(load.exitCode, 1, load.output);
    assert.match(
      load.output,
      new RegExp(
        `${other.kver.replace(/[.+]/g, "\\$&")}.*${lab.kernelRelease.replace(/[.+]/g, "\\$&")}|vermagic`,
      ),
    );
    assert.doesNotMatch(g.commands[2]!.output, /livepatch_other/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
