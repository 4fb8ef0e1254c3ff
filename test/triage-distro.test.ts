/**
 * kpatch-build triage on Debian's real update (issue 19, part 5): the fixes between an older
 * stock 6.12 release's linux-source and the installed one, a few files of them (each fix is built
 * alone for the OLDER stock kernel, as a user would), then every module the triage built is loaded
 * with kpatch in a guest of that older kernel: it transitions, unloads, no Call Trace.
 *
 * By hand, for a whole triage: KPATCH_TRIAGE_MODULES=DIR KPATCH_TRIAGE_RELEASE=KVER loads every
 * .ko of DIR (a triage's -o) in a guest of KVER the same way (kpatch-lab setup --distro SERIES
 * --release KVER first).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { promisify } from "node:util";
import { parseRelease } from "../src/debian/kernel-release.js";
import { findDistroLab, setupDistroLab } from "../src/lab/distro.js";
import { runGuest } from "../src/lab/guest.js";
import { kpatchInGuest } from "../src/lab/guest-node.js";
import { KERNEL_SERIES, testSeries } from "../src/lab/paths.js";
import { Progress } from "../src/util/progress.js";
import { OTHER_RELEASE } from "./helpers/kpatch-build-distro-cases.js";

const run = promisify(execFile);
const series = testSeries();
const cli = join(import.meta.dirname, "..", "src", "cli", "kpatch-build.js");
const older = OTHER_RELEASE[series];
const newer = findDistroLab(series);
/** Two fixes of the update 6.12.115 -> the installed 6.12 source (mm-walking /proc code, io_uring). */
const ONLY = ["fs/proc/task_mmu.c", "io_uring/cancel.c"];
const out = mkdtempSync(join(tmpdir(), "triage-distro-"));
test.after(() => rmSync(out, { recursive: true, force: true }));

interface TriageJson {
  kernelRelease: string;
  fixes: {
    file: string;
    outcome: string;
    module?: string;
    code?: string;
    message?: string;
    functions?: unknown[];
  }[];
}

/** Loads each of `modules` (in `dir`) in a guest of `kernelRelease`: kpatch load, list, unload each. */
async function loadEach(kernelRelease: string, dir: string, modules: string[]) {
  // The release's own series: a by-hand triage may be of the other one (6.1.0-54 on a 6.12 CI).
  const series = KERNEL_SERIES.find((s) => s === parseRelease(kernelRelease).series);
  assert.ok(series, `${kernelRelease} is a release of ${KERNEL_SERIES.join(" or ")}`);
  const lab =
    findDistroLab(series, { kernelRelease }) ??
    (await setupDistroLab({ series, kernelRelease, progress: new Progress({ quiet: true }) }));
  const kpatch = await kpatchInGuest(lab);
  const steps = modules.flatMap((m) => {
    const name = m.replace(/\.ko$/, "").replace(/-/g, "_");
    return [`kpatch load ${m}`, `kpatch unload ${name}`];
  });
  const guest = await runGuest({
    lab,
    shareHost: true,
    files: [kpatch.file, ...modules.map((m) => join(dir, m))],
    commands: [kpatch.setup, ...steps, "kpatch list"],
    timeoutMs: 20 * 60_000,
    memoryMb: 1024,
  });
  for (const r of guest.commands) {
    if (/^kpatch (load|unload)/.test(r.command)) assert.equal(r.exitCode, 0, `${r.command}:\n${r.output}`);
  }
  assert.doesNotMatch(guest.kernelLog, /Call Trace/, "no Call Trace in the kernel log");
  assert.doesNotMatch(guest.commands.at(-1)!.output, /livepatch_/, "nothing left loaded");
  process.stdout.write(`# ${modules.length} modules loaded, transitioned and unloaded on ${kernelRelease}\n`);
}

test("triage of a real update: each fix built alone for the older kernel, every built module loads there", {
  skip: !older
    ? `no older ${series} release is set up for comparison`
    : !newer
      ? `the ${series} stock kernel is not set up (kpatch-lab setup --distro ${series})`
      : false,
  timeout: 60 * 60_000,
}, async () => {
  const args = ["triage", "--kernel-release", older!.kver, "--to", newer!.sourceVersion, "-o", out, "--json"];
  for (const o of ONLY) args.push("--only", o);
  const r = await run("node", [cli, ...args], { maxBuffer: 256 << 20 });
  const result = JSON.parse(r.stdout) as TriageJson;
  assert.equal(result.kernelRelease, older!.kver);
  assert.ok(result.fixes.length > 0, "the update changes files under the chosen directories");
  for (const f of result.fixes) {
    assert.ok(
      ONLY.some((o) => f.file.startsWith(o)),
      `${f.file} is under --only`,
    );
    if (f.outcome !== "built") assert.ok(f.code && f.message, `${f.file}: a refusal says why`);
    process.stdout.write(`# ${f.file}: ${f.outcome} ${f.code ?? ""} ${f.message ?? ""}\n`);
  }
  // The table is the same triage (cached results), readable.
  const table = await run("node", [cli, ...args.filter((a) => a !== "--json")], { maxBuffer: 256 << 20 });
  assert.match(table.stdout, /\d+ fixes: \d+ built, \d+ refused/);
  const built = result.fixes.filter((f) => f.outcome === "built");
  assert.ok(built.length > 0, "at least one of Debian's fixes builds");
  const modules = readdirSync(out).filter((f) => f.endsWith(".ko"));
  assert.equal(modules.length, built.length, "one module per built fix in -o");
  await loadEach(older!.kver, out, modules);
});

const byHand = process.env["KPATCH_TRIAGE_MODULES"];
test("by hand: every module of a triage loads in a guest of its kernel", {
  skip: byHand
    ? false
    : "set KPATCH_TRIAGE_MODULES=DIR KPATCH_TRIAGE_RELEASE=KVER to load a whole triage's modules",
  timeout: 60 * 60_000,
}, async () => {
  const release = process.env["KPATCH_TRIAGE_RELEASE"];
  assert.ok(release, "KPATCH_TRIAGE_RELEASE names the kernel the modules were built for");
  const modules = readdirSync(byHand!).filter((f) => f.endsWith(".ko"));
  await loadEach(release, byHand!, modules);
});
