import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { Progress } from "../util/progress.js";
import { kernelSourceDir, unpackKernelSource } from "./kernel-source.js";

const root = mkdtempSync(join(tmpdir(), "kpatch-kernel-source-"));
after(() => rmSync(root, { recursive: true, force: true }));
process.env["KPATCH_TS_CACHE"] = join(root, "cache");

/** A linux-source-<series> tarball holding a Makefile (and enough files to take a moment). */
function tarball(series: string): string {
  const dir = join(root, "pkg", `linux-source-${series}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Makefile"), "VERSION = 9\n");
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, `f${i}.c`), `int f${i};\n`);
  const out = join(root, `linux-source-${series}.tar.xz`);
  const r = spawnSync("tar", ["-cJf", out, "-C", join(root, "pkg"), `linux-source-${series}`]);
  assert.equal(r.status, 0, String(r.stderr));
  return out;
}

const quiet = () => new Progress({ quiet: true });

test("two runs unpacking the same source at once both get the whole tree, published once", async () => {
  const tar = tarball("9.9");
  const options = { series: "9.9", version: "9.9.1-1", tarball: tar };
  const [a, b] = await Promise.all([
    unpackKernelSource({ ...options, progress: quiet() }),
    unpackKernelSource({ ...options, progress: quiet() }),
  ]);
  const { top, srcDir, stamp } = kernelSourceDir("9.9", "9.9.1-1");
  assert.equal(a, srcDir);
  assert.equal(b, srcDir);
  assert.equal(readFileSync(stamp, "utf8"), "9.9.1-1\n");
  assert.equal(readdirSync(srcDir).length, 301);
  assert.deepEqual(
    readdirSync(join(top, "..")).filter((n) => n.includes("unpacking")),
    [],
    "no work directory left",
  );
});

test("an older run's unfinished entry (no stamp) is replaced, a dead run's work directory removed", async () => {
  const tar = tarball("9.8");
  const { top, srcDir, stamp } = kernelSourceDir("9.8", "9.8.1-1");
  mkdirSync(join(srcDir), { recursive: true });
  writeFileSync(join(srcDir, "half.c"), "");
  const dead = join(top, "..", ".9.8.1-1.unpacking-999999999");
  mkdirSync(dead);
  await unpackKernelSource({ series: "9.8", version: "9.8.1-1", tarball: tar, progress: quiet() });
  assert.ok(existsSync(stamp));
  assert.ok(!existsSync(join(srcDir, "half.c")), "the unfinished tree is gone");
  assert.ok(existsSync(join(srcDir, "Makefile")));
  assert.ok(!existsSync(dead), "the dead run's work directory is removed");
});
