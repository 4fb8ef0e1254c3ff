#!/usr/bin/env node
/**
 * kpatch-build: the entry. It loads only what the verb needs: `diff-object` the differ, anything
 * else the build pipeline (build-command.ts), so a one-object diff starts fast.
 */
import { runCli } from "./main.js";

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "diff-object") {
    const { diffObjectMain } = await import("./diff-object.js");
    return diffObjectMain(argv.slice(1));
  }
  if (argv[0] === "triage") {
    const { triageMain } = await import("./triage-command.js");
    return triageMain(argv.slice(1));
  }
  const { buildMain } = await import("./build-command.js");
  return buildMain(argv);
}

runCli("kpatch-build", main);
