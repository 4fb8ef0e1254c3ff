/**
 * Running Node.js programs (the kpatch CLI) inside the lab guest. The guest has only busybox;
 * with `shareHost` this machine's / is mounted read-only at /host, so the guest runs the
 * host's own node through the host's dynamic loader and libraries, all under /host. Paths are
 * resolved to their real locations on the host first: an absolute symlink (Debian's
 * /usr/bin/node → /etc/alternatives/...) would otherwise resolve inside the guest.
 */
import { realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import type { GuestFile } from "./initramfs.js";

/** Where the host's / is in the guest (see lab/initramfs/init). */
export const HOST_MOUNT = "/host";

/** The compiled kpatch CLI of this checkout. */
export const KPATCH_CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "cli", "kpatch.js");

export interface GuestNode {
  /** The command line prefix that runs the host's node in the guest (then: script, args). */
  argv: string[];
  /** The host's loader and library directories (host paths). */
  loader: string;
  libraryDirs: string[];
  node: string;
}

let cached: GuestNode | undefined;

/** How the guest runs the host's node: loader, library path, binary, from `ldd` on the host. */
export async function guestNode(): Promise<GuestNode> {
  if (cached) return cached;
  const node = realpathSync(process.execPath);
  const r = await execCheck("ldd", [node], { what: `ldd ${node}` });
  let loader: string | undefined;
  const dirs: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const lib = /=>\s+(\/\S+)/.exec(line)?.[1];
    const interp = /^\s*(\/\S*ld-linux\S*)\s+\(/.exec(line)?.[1];
    if (interp) loader = realpathSync(interp);
    if (lib) {
      const dir = dirname(realpathSync(lib));
      if (!dirs.includes(dir)) dirs.push(dir);
    }
  }
  if (!loader) {
    throw new KpatchError("LAB_NODE", `Cannot run node in the guest: ldd ${node} names no dynamic loader`);
  }
  const inGuest = (p: string) => `${HOST_MOUNT}${p}`;
  cached = {
    argv: [inGuest(loader), "--library-path", dirs.map(inGuest).join(":"), inGuest(node)],
    loader,
    libraryDirs: dirs,
    node,
  };
  return cached;
}

/** A shell script that runs a host Node.js script in the guest with its arguments. */
export async function nodeWrapper(script: string, comment: string): Promise<string> {
  const n = await guestNode();
  const words = [...n.argv, `${HOST_MOUNT}${realpathSync(script)}`].map(shellQuote).join(" ");
  return `#!/bin/sh\n# ${comment}\nexec ${words} "$@"\n`;
}

/** The guest-side path of the kpatch wrapper after kpatchSetup has run. */
export const GUEST_KPATCH = "/usr/sbin/kpatch";

/**
 * The kpatch CLI in the guest: a file to pass in `files` and a first command that installs it
 * as /usr/sbin/kpatch (on PATH). The guest needs `shareHost: true`.
 */
export async function kpatchInGuest(): Promise<{ file: GuestFile; setup: string; wrapper: string }> {
  const wrapper = await nodeWrapper(
    KPATCH_CLI,
    "kpatch (kpatch-ts) in the lab guest: the host's node and CLI via /host",
  );
  return {
    file: { name: "kpatch-wrapper", data: wrapper, mode: 0o755 },
    setup: `mkdir -p /usr/sbin && cp /lab/files/kpatch-wrapper ${GUEST_KPATCH} && chmod 755 ${GUEST_KPATCH}`,
    wrapper,
  };
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
