#!/usr/bin/env node
/**
 * The test runner of `npm test` (scripts/test.sh): every *.test.js file as its own
 * `node --test` process, two at a time (KPATCH_TEST_WORKERS=N for another count, 1 for one at a
 * time), longest first by the table below. Each file's TAP output is printed whole when the file
 * ends, never interleaved with another's; then a summary: files, tests passed, failed and
 * skipped, seconds per file. Exits non-zero if any file failed or was killed.
 *
 *   node scripts/run-tests.mjs [FILE.test.js...]   (default: every test file under dist/src, dist/test)
 *
 * Why two: most of the time goes to QEMU TCG guests, each one host thread, on a 2-core machine.
 * Files sharing state are safe side by side because what they share is guarded: the lab source
 * tree by kpatch-build's tree lock (readers take it too: test/helpers/tree-state.ts,
 * test/fixtures/diff/lab-pair.ts), cached objects and modules by complete-or-absent writes, guest
 * disks by per-run copies, HTTP servers by kernel-picked ports, scratch files by mkdtemp. The
 * files that are not safe beside another are in RUN_ALONE with the reason; they run first, alone.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative, resolve as resolvePath } from "node:path";

/** Files that run with no other file beside them, each with why. Paths as under dist/. */
const RUN_ALONE = new Map([
  [
    "test/kpatch-build-interrupt.test.js",
    "kills kpatch-build runs and asserts the tree lock's holder right after: a run waiting in " +
      "the other worker takes the lock over within 250 ms",
  ],
  [
    "test/kpatch-build-tree-safety.test.js",
    "compares the lab tree's files before and after each build, the entries at its top " +
      "(the lock, takeover claims) included; its empty-cache build holds the tree lock longest",
  ],
  [
    "test/kpatch-stall.test.js",
    "its guest steps race 1-4 s timeouts (kpatch load --timeout 4 --signal-after 1): a " +
      "build beside it slows the TCG guest",
  ],
  [
    "test/kpatch-stress.test.js",
    "a 2-vCPU guest whose transitions must end within 60 s guest time; with a build beside " +
      "it, the guest's one host thread gets less than a core",
  ],
]);

/**
 * Expected seconds per file (CI, warm cache, one file at a time), for longest-first order.
 * A file not listed counts as short (0). Rough is fine: it only orders the queue.
 */
const EXPECTED_SECONDS = {
  "test/fleet-apt.test.js": 774,
  "test/kpatch-stress.test.js": 245,
  "test/fleet-apt-trixie.test.js": 209,
  "test/kpatch-build-distro.test.js": 203,
  "test/livepatch-selftests.test.js": 184,
  "test/kpatch-package-guest.test.js": 166,
  "test/kpatch-build-distro-objects.test.js": 162,
  "test/kpatch-boot.test.js": 122,
  "test/kpatch-build-lab.test.js": 106,
  "test/lab-distro.test.js": 84,
  "test/kpatch-stall.test.js": 76,
  "test/kpatch-cli.test.js": 70,
  "test/lab-debian.test.js": 48,
  "test/elf-corpus.test.js": 44,
  "test/kpatch-sign.test.js": 39,
  "test/kpatch-boot-order.test.js": 37,
  "test/kpatch-build-compiler.test.js": 31,
  "test/lab-smoke.test.js": 26,
  "test/kpatch-with-build.test.js": 19,
  "test/diff-lab-special.test.js": 17,
  "test/diff-corpus.test.js": 16,
  "test/diff-lab-objects.test.js": 16,
  "test/lab-distro-release.test.js": 16,
  "test/run-pre-live.test.js": 12,
  "test/run-pre-lab.test.js": 11,
  "test/kpatch-build-tree-safety.test.js": 11,
  "test/kpatch-build-interrupt.test.js": 7,
  "test/cli-errors.test.js": 7,
};

const DIST = "dist";

/** Every *.test.js under dist/src and dist/test (dist/test also holds helpers: not those). */
function findTestFiles() {
  const found = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".test.js")) found.push(p);
    }
  };
  for (const top of ["src", "test"]) walk(join(DIST, top));
  return found.sort();
}

/** The file's key in the tables: its path under dist/ (any other file: its path as given). */
const keyOf = (file) => (relative(DIST, file).startsWith("..") ? file : relative(DIST, file));
const expectedOf = (file) => EXPECTED_SECONDS[keyOf(file)] ?? 0;

/** Alone files first (in name order), then the rest longest first, ties by name. */
function planOrder(files) {
  const byLength = (a, b) => expectedOf(b) - expectedOf(a) || a.localeCompare(b);
  return [
    ...files.filter((f) => RUN_ALONE.has(keyOf(f))).sort(),
    ...files.filter((f) => !RUN_ALONE.has(keyOf(f))).sort(byLength),
  ];
}

/** The counts node's TAP reporter prints at the end ("# pass 3"). */
function tapCounts(text) {
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  return {
    tests: count("tests"),
    pass: count("pass"),
    fail: count("fail"),
    cancelled: count("cancelled"),
    skipped: count("skipped"),
    todo: count("todo"),
  };
}

/**
 * Suites skipped whole (`describe(..., { skip: why })`): node's "# skipped" counts tests only, and
 * a file whose one suite is skipped reports "# tests 0". Each is an `ok N - name # SKIP why`
 * line whose YAML block says `type: 'suite'`.
 */
function skippedSuites(text) {
  const lines = text.split("\n");
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)ok \d+ - .*# SKIP/.exec(lines[i]);
    if (!m) continue;
    const indent = m[1];
    for (let j = i + 1; j < lines.length && lines[j] !== `${indent}  ...`; j++) {
      if (lines[j] === `${indent}  type: 'suite'`) {
        n++;
        break;
      }
    }
  }
  return n;
}

const running = new Set();

function withoutTestContext(env) {
  const { NODE_TEST_CONTEXT: _, ...rest } = env;
  return rest;
}

/** Runs one file; resolves with its whole output, exit and counts once it has ended. */
function runFile(file) {
  const started = Date.now();
  // Its own process group, so that an interrupted run can stop it with its guests and builds.
  const child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=tap", file], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    // Without the test runner's mark for its own children: with it (run from inside a test
    // file), node --test runs no file and reports nothing.
    env: withoutTestContext(process.env),
  });
  running.add(child);
  const chunks = [];
  child.stdout.on("data", (d) => chunks.push(d));
  child.stderr.on("data", (d) => chunks.push(d));
  return new Promise((resolve) => {
    child.on("error", (e) => chunks.push(Buffer.from(`cannot start node: ${e.message}\n`)));
    child.on("close", (code, signal) => {
      running.delete(child);
      // Whatever the file left running in its group (a guest, a build) once it has ended or was killed.
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      const output = Buffer.concat(chunks).toString("utf8");
      const counts = tapCounts(output);
      const suitesSkipped = skippedSuites(output);
      counts.skipped += suitesSkipped;
      // Killed itself (signal), or its test process killed under it (node's TAP says which signal).
      const killedBy = signal ?? /^\s+signal: '(SIG\w+)'$/m.exec(output)?.[1];
      // A file that reports no test tested nothing: a failure, not a pass. (node --test counts
      // a file without tests as one passed test named after the file.) A suite skipped whole
      // says why in its SKIP line: a skip, counted as one.
      const noTests =
        (counts.tests === 0 && suitesSkipped === 0) ||
        (counts.tests === 1 && output.split("\n").includes(`ok 1 - ${resolvePath(file)}`));
      const ok = code === 0 && !killedBy && counts.fail === 0 && counts.cancelled === 0 && !noTests;
      resolve({
        file,
        code,
        killedBy,
        noTests,
        ok,
        seconds: (Date.now() - started) / 1000,
        output,
        ...counts,
      });
    });
  });
}

function statusOf(r) {
  if (r.killedBy) return `KILLED (${r.killedBy})`;
  if (r.noTests && r.code === 0) return "FAILED (no tests)";
  if (!r.ok) return `FAILED (exit ${r.code})`;
  return "ok";
}

function printResult(r) {
  process.stdout.write(`\n# ===== ${keyOf(r.file)}: ${statusOf(r)} in ${r.seconds.toFixed(1)} s =====\n`);
  process.stdout.write(r.output.endsWith("\n") || r.output === "" ? r.output : `${r.output}\n`);
}

/**
 * Runs `files` in `workers` lanes: a file of RUN_ALONE starts only when no other file runs, and
 * nothing starts beside it.
 */
async function runAll(files, workers) {
  const queue = planOrder(files);
  const results = [];
  let alone = false;
  const lanes = new Set();
  const startNext = () => {
    while (queue.length > 0 && lanes.size < workers && !alone) {
      const file = queue[0];
      const mustBeAlone = RUN_ALONE.has(keyOf(file));
      if (mustBeAlone && lanes.size > 0) return;
      queue.shift();
      alone = mustBeAlone;
      const why = mustBeAlone ? ` alone: ${RUN_ALONE.get(keyOf(file))}` : "";
      process.stdout.write(`# start ${keyOf(file)} (expected ${expectedOf(file)} s)${why}\n`);
      const lane = runFile(file).then((r) => {
        lanes.delete(lane);
        if (mustBeAlone) alone = false;
        results.push(r);
        printResult(r);
        startNext();
      });
      lanes.add(lane);
    }
  };
  startNext();
  while (lanes.size > 0) await Promise.race(lanes);
  return results;
}

function printSummary(results, wallSeconds, workers) {
  const rows = [...results].sort((a, b) => b.seconds - a.seconds);
  const total = (k) => results.reduce((s, r) => s + r[k], 0);
  const lines = ["", `# ===== summary: ${results.length} files in ${workers} workers =====`];
  for (const r of rows) {
    const counts = `${r.pass} passed, ${r.fail} failed, ${r.skipped} skipped`;
    lines.push(
      `# ${r.seconds.toFixed(1).padStart(7)} s  ${statusOf(r).padEnd(16)} ${keyOf(r.file)}  (${counts})`,
    );
  }
  const bad = results.filter((r) => !r.ok);
  lines.push(
    `# files ${results.length}, failed or killed ${bad.length}` +
      (bad.length ? `: ${bad.map((r) => keyOf(r.file)).join(", ")}` : ""),
    `# tests ${total("tests")}, passed ${total("pass")}, failed ${total("fail")}, cancelled ${total("cancelled")}, skipped ${total("skipped")}, todo ${total("todo")}`,
    `# ${total("seconds").toFixed(0)} s of files in ${wallSeconds.toFixed(0)} s`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function main() {
  const workers = Number(process.env.KPATCH_TEST_WORKERS ?? 2);
  if (!Number.isInteger(workers) || workers < 1) {
    process.stderr.write(
      `run-tests: error: KPATCH_TEST_WORKERS must be a whole number >= 1, not '${process.env.KPATCH_TEST_WORKERS}'\n`,
    );
    process.exit(2);
  }
  const files = process.argv.length > 2 ? process.argv.slice(2) : findTestFiles();
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => {
      process.stderr.write(`run-tests: ${sig}: stopping ${running.size} running file(s)\n`);
      for (const child of running) {
        try {
          process.kill(-child.pid, "SIGTERM");
        } catch {}
      }
      process.exit(130);
    });
  }
  const started = Date.now();
  const results = await runAll(files, workers);
  printSummary(results, (Date.now() - started) / 1000, workers);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

await main();
