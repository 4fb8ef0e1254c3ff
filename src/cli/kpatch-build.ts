#!/usr/bin/env node
import { EXIT, runCli } from "./main.js";

const USAGE = `Usage: kpatch-build [options] PATCH...

Build a live patch module from source patches (not implemented yet; tracked in the
kpatch-build issue). This version only prints this text and exits with status 2.
`;

runCli("kpatch-build", async (argv) => {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  process.stderr.write(USAGE);
  return EXIT.usage;
});
