import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { after } from "node:test";
import { probeShell } from "./kbuild-probes.js";

const root = mkdtempSync(join(tmpdir(), "kpatch-kbuild-probes-"));
after(() => rmSync(root, { recursive: true, force: true }));
process.env["KPATCH_TS_CACHE"] = join(root, "cache");
const answers = join(root, "cache", "kbuild-probes", "answers");
const log = join(root, "runs.log");

/**
 * A script compiler `kcc` in `dir` (its cc1 and as beside it, as -print-prog-name names them) and
 * a linker `kld`: each logs its run; `kcc -fyes` succeeds, any other question fails.
 */
function toolchain(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const write = (name: string, text: string) =>
    writeFileSync(join(dir, name), `#!/bin/sh\n${text}\n`, { mode: 0o755 });
  write(
    "kcc",
    `case "$1" in -print-prog-name=*) echo "${dir}/\${1#-print-prog-name=}"; exit 0 ;; esac\necho kcc >> ${log}\n[ "$1" = -fyes ]`,
  );
  write("cc1", "exit 0");
  write("as", "exit 0");
  write("kld", `echo kld >> ${log}\nexit 0`);
}

/** A command shaped as kbuild's try-run expands it (scripts/Makefile.compiler). */
function tryRun(scratch: string, question: string): string {
  return `set -e; TMP=${scratch}/.tmp_$$/tmp; trap "rm -rf ${scratch}/.tmp_$$" EXIT; mkdir -p ${scratch}/.tmp_$$; if ( ${question}) >/dev/null 2>&1; then echo "-fyes"; else echo "-fno"; fi`;
}

const runs = () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).length : 0);

/** make's SHELL for a build whose PATH is `path`, as build-module sets it up. */
async function shellFor(path: string) {
  const env = { ...process.env, PATH: path };
  const probes = await probeShell({ makeArgs: ["CC=kcc", "LD=kld"], env });
  const arg = probes.args[0] ?? "";
  assert.ok(arg.startsWith("SHELL="), "the programs were identified");
  const shell = arg.slice("SHELL=".length);
  const ask = (command: string) => {
    const r = spawnSync(shell, ["-c", command], {
      cwd: root,
      encoding: "utf8",
      env: { ...env, ...probes.env },
    });
    return { out: r.stdout, code: r.status };
  };
  return Object.assign(ask, { shell, env: { ...env, ...probes.env } });
}

const debian = existsSync("/var/lib/dpkg/status") && existsSync("/etc/debian_version");
const skip = debian ? false : "not a Debian system: the script keeps nothing without /var/lib/dpkg/status";
const bin = join(root, "bin");
toolchain(bin);
const PATH = `${bin}:/usr/bin:/bin`;

test("a try-run seen before is answered without running it, from any M= directory", { skip }, async () => {
  const sh = await shellFor(PATH);
  const before = runs();
  assert.deepEqual(sh(tryRun(join(root, "m1"), 'kcc -fyes -c -x c /dev/null -o "$TMP"')), {
    out: "-fyes\n",
    code: 0,
  });
  assert.deepEqual(sh(tryRun(join(root, "m1"), 'kcc -fno -c -x c /dev/null -o "$TMP"')), {
    out: "-fno\n",
    code: 0,
  });
  assert.equal(runs(), before + 2);
  assert.deepEqual(sh(tryRun(join(root, "m2"), 'kcc -fyes -c -x c /dev/null -o "$TMP"')), {
    out: "-fyes\n",
    code: 0,
  });
  assert.deepEqual(sh(tryRun(join(root, "m2"), 'kcc -fno -c -x c /dev/null -o "$TMP"')), {
    out: "-fno\n",
    code: 0,
  });
  assert.equal(runs(), before + 2);
  // An echo feeding the compiler is kept too; the linker's question as well.
  const fed = tryRun(join(root, "m1"), "echo 'int x;' | kcc -fyes -c -x c - -o \"$TMP\"");
  const linker = tryRun(join(root, "m1"), "kld -v");
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(sh(fed), { out: "-fyes\n", code: 0 });
    assert.deepEqual(sh(linker), { out: "-fyes\n", code: 0 });
  }
  assert.equal(runs(), before + 4);
});

test("a replaced, touched or shadowed compiler, cc1, as or linker asks again", { skip }, async () => {
  const question = tryRun(join(root, "m1"), 'kcc -fyes -c -x c /dev/null -o "$TMP"');
  const asked = async (path: string) => {
    const before = runs();
    assert.deepEqual((await shellFor(path))(question), { out: "-fyes\n", code: 0 });
    return runs() - before;
  };
  await asked(PATH);
  assert.equal(await asked(PATH), 0, "the same programs: answered");
  const replace = (name: string) => {
    copyFileSync(join(bin, name), join(bin, `${name}.new`));
    renameSync(join(bin, `${name}.new`), join(bin, name));
  };
  for (const name of ["kcc", "cc1", "as", "kld"]) {
    replace(name);
    assert.equal(await asked(PATH), 1, `${name} replaced by a copy: asked again`);
    assert.equal(await asked(PATH), 0);
  }
  utimesSync(join(bin, "cc1"), new Date(), new Date(Date.now() + 5000));
  assert.equal(await asked(PATH), 1, "cc1 touched: asked again");
  // Another kcc earlier in PATH (a user's /usr/local/bin/gcc).
  const local = join(root, "local-bin");
  toolchain(local);
  assert.equal(await asked(`${local}:${PATH}`), 1);
  assert.equal(await asked(`${local}:${PATH}`), 0);
});

test("gcc's environment (GCC_EXEC_PREFIX, COMPILER_PATH, CPATH...) is part of the key: changed, asked again", {
  skip,
}, async () => {
  const question = tryRun(join(root, "m3"), 'kcc -fyes -c -x c /dev/null -o "$TMP"');
  const sh = await shellFor(PATH);
  const asked = (extra: Record<string, string>) => {
    const before = runs();
    const r = spawnSync("sh", ["-c", 'exec "$0" -c "$1"', sh.shell, question], {
      cwd: root,
      encoding: "utf8",
      env: { ...sh.env, ...extra },
    });
    assert.equal(r.stdout, "-fyes\n");
    return runs() - before;
  };
  asked({});
  assert.equal(asked({}), 0, "the same environment: answered");
  for (const v of ["GCC_EXEC_PREFIX", "COMPILER_PATH", "CPATH", "LD_LIBRARY_PATH"]) {
    assert.equal(asked({ [v]: join(root, "elsewhere") }), 1, `${v} set: asked again`);
    assert.equal(asked({ [v]: join(root, "elsewhere") }), 0);
  }
});

test("a try-run that runs other programs, or a program not identified, is run every time", {
  skip,
}, async () => {
  const sh = await shellFor(PATH);
  for (const question of [
    'kcc -fyes -c -x c /dev/null -o "$TMP" && kcc -fyes -c -x c /dev/null -o "$TMP"',
    'kcc -fyes -c -x c /dev/null -o "$TMP"; true',
    'true | kcc -fyes -c -x c /dev/null -o "$TMP"',
    "echo 'x' | kcc -fyes -c -x c /dev/null -o \"$TMP\" | cat",
    "sh -c 'kcc -fyes'",
  ]) {
    const before = runs();
    for (let i = 0; i < 2; i++) sh(tryRun(join(root, "m3"), question));
    assert.equal(runs() - before, question.includes("&&") ? 4 : 2, question);
  }
});

test("every other command (kbuild's recipes) runs in /bin/sh unchanged, its status kept, nothing kept", async () => {
  const sh = await shellFor(PATH);
  const kept = existsSync(answers) ? readdirSync(answers).length : 0;
  assert.deepEqual(sh("echo one; echo two >&2; exit 3"), { out: "one\n", code: 3 });
  assert.deepEqual(sh('set -e; TMP=x; echo "not a try-run"'), { out: "not a try-run\n", code: 0 });
  assert.equal(existsSync(answers) ? readdirSync(answers).length : 0, kept);
});

test("a failing try-run wrapper (kbuild's own set -e) keeps no answer and fails as it would", {
  skip,
}, async () => {
  const sh = await shellFor(PATH);
  // mkdir under a file fails: set -e ends the command before any echo.
  const blocker = join(root, "blocker");
  writeFileSync(blocker, "");
  const before = readdirSync(answers).length;
  const r = sh(tryRun(blocker, 'kcc -fyes -c -x c /dev/null -o "$TMP" -DBLOCKED'));
  assert.notEqual(r.code, 0);
  assert.equal(r.out, "");
  assert.equal(readdirSync(answers).length, before);
});

test("a cross or LLVM build, or a compiler not found, keeps nothing", async () => {
  const env = { ...process.env, PATH };
  assert.deepEqual((await probeShell({ makeArgs: ["CC=kcc", "LLVM=1"], env })).args, []);
  assert.deepEqual((await probeShell({ makeArgs: ["CROSS_COMPILE=aarch64-linux-gnu-"], env })).args, []);
  assert.deepEqual((await probeShell({ makeArgs: ["CC=kcc", "LD=no-such-linker"], env })).args, []);
  assert.deepEqual((await probeShell({ makeArgs: ["CC=no-such-cc"], env })).args, []);
});
