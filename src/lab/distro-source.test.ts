import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { findDistroSource } from "./distro-source.js";

describe("findDistroSource: the unpacked tree only when complete", () => {
  const cache = mkdtempSync(join(tmpdir(), "distro-source-"));
  const saved = process.env["KPATCH_TS_CACHE"];
  const lab = { series: "6.1" as const, sourceVersion: "6.1.192-3" };
  const top = join(cache, "src", lab.sourceVersion);
  before(() => {
    process.env["KPATCH_TS_CACHE"] = cache;
  });
  after(() => {
    if (saved === undefined) delete process.env["KPATCH_TS_CACHE"];
    else process.env["KPATCH_TS_CACHE"] = saved;
    rmSync(cache, { recursive: true, force: true });
  });

  it("is undefined with nothing unpacked", () => {
    assert.equal(findDistroSource(lab), undefined);
  });

  it("is undefined for a tree whose unpacking never finished (no .unpacked stamp)", () => {
    mkdirSync(join(top, "linux-source-6.1"), { recursive: true });
    writeFileSync(join(top, "linux-source-6.1", "Makefile"), "");
    assert.equal(findDistroSource(lab), undefined);
  });

  it("is the tree once the stamp is written", () => {
    writeFileSync(join(top, ".unpacked"), `${lab.sourceVersion}\n`);
    assert.equal(findDistroSource(lab), join(top, "linux-source-6.1"));
  });

  it("refuses a version that is not a Debian version (it names a cache path)", () => {
    assert.throws(() => findDistroSource({ series: "6.1", sourceVersion: "../x" }), /\.\.\/x/);
  });
});
