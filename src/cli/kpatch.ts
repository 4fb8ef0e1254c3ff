#!/usr/bin/env node
import { EXIT, runCli } from "./main.js";

const USAGE = `Usage: kpatch <command> [options]

Manage live patch modules on a running kernel.

Commands (not implemented yet; tracked in the kpatch command issue):
  load MODULE.ko | --all     load a patch module and wait for its transition
  unload MODULE | --all      disable, wait for the transition, and unload
  list [--json]              loaded and installed patches
  info MODULE                what a patch module changes
  install [-k KVER] MODULE.ko / uninstall MODULE
  signal                     signal tasks that block a transition
  version                    print the version

This version of kpatch only prints this text: every command exits with status 2.
`;

runCli("kpatch", async (argv) => {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  process.stderr.write(USAGE);
  return EXIT.usage;
});
