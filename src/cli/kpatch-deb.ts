#!/usr/bin/env node
/**
 * npm run deb: the Debian package of kpatch-ts itself (src/debian/kpatch-ts-package.ts), from
 * this repository's build.
 */
import { join } from "node:path";
import { buildKpatchTsPackage } from "../debian/kpatch-ts-package.js";
import { parseCommandLine } from "./args.js";
import { USAGE } from "./kpatch-help.js";
import { EXIT, runCli, UsageError } from "./main.js";

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    { output: { type: "string", short: "o" }, maintainer: { type: "string" } },
    "kpatch-deb",
  );
  if (positionals.length) throw new UsageError("takes no arguments");
  const deb = await buildKpatchTsPackage({
    repo: join(import.meta.dirname, "..", "..", ".."),
    outDir: values.output ?? ".",
    maintainer: values.maintainer,
    usage: USAGE,
  });
  process.stdout.write(`${deb}\n`);
  return EXIT.ok;
}

runCli("kpatch-deb", main);
