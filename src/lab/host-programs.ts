/**
 * This machine's programs in the lab guest. The guest has only busybox; a program of the host
 * (x86-64 like the guest's kernel) runs there when its dynamic loader and libraries are where
 * its ELF header and the loader look: the loader at its PT_INTERP path, the libraries at the
 * paths `ldd` names (the loader's built-in search path, multiarch on Debian). They go into the
 * initramfs under /lab/files/hostfs and a first command moves them into place.
 */
import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import { KpatchError } from "../util/errors.js";
import { execCheck, shellQuote } from "../util/exec.js";
import type { GuestFile } from "./initramfs.js";

export interface HostProgram {
  /** Real host path of the program. */
  path: string;
  /** The dynamic loader: the path the program asks for and its real host path (none when static). */
  loader?: { name: string; path: string };
  /** Each library: its soname, the path the loader finds it at, and the real host path. */
  libraries: { name: string; found: string; path: string }[];
}

const programs = new Map<string, HostProgram>();

/** A host program with its loader and libraries, from `ldd` (real paths, symlinks resolved). */
export async function hostProgram(path: string): Promise<HostProgram> {
  const real = realpathSync(path);
  const known = programs.get(real);
  if (known) return known;
  const r = await execCheck("ldd", [real], { what: `ldd ${real}` });
  const program: HostProgram = { path: real, libraries: [] };
  for (const line of r.stdout.split("\n")) {
    const lib = /^\s*(\S+)\s+=>\s+(\/\S+)/.exec(line);
    const interp = /^\s*(\/\S*ld-linux\S*)\s+\(/.exec(line)?.[1];
    if (interp) program.loader = { name: interp, path: realpathSync(interp) };
    else if (lib) program.libraries.push({ name: lib[1]!, found: lib[2]!, path: realpathSync(lib[2]!) });
  }
  programs.set(real, program);
  return program;
}

export interface GuestProgram {
  /** The program on this machine, e.g. /usr/bin/bash. */
  host: string;
  /** Where it goes in the guest, e.g. /bin/bash (what was there is replaced). */
  guest: string;
  /** Symlinks to it beside it in the guest (kmod's insmod, rmmod, modinfo). */
  links?: readonly string[];
}

/**
 * The files to add to a guest run and the first command that installs `wanted` programs, their
 * loader and their libraries at their places in the guest.
 */
export async function hostProgramsInGuest(
  wanted: readonly GuestProgram[],
): Promise<{ files: GuestFile[]; setup: string }> {
  const place = new Map<string, string>(); // guest path → host path
  const add = (guest: string, host: string) => {
    const had = place.get(guest);
    if (had !== undefined && had !== host) {
      throw new KpatchError("LAB_FILE", `Cannot put both ${had} and ${host} at ${guest} in the guest`);
    }
    place.set(guest, host);
  };
  for (const w of wanted) {
    const p = await hostProgram(w.host);
    add(w.guest, p.path);
    if (p.loader) add(p.loader.name, p.loader.path);
    for (const lib of p.libraries) add(lib.found, lib.path);
  }
  const files: GuestFile[] = [];
  const steps: string[] = [];
  for (const [guest, host] of [...place].sort()) {
    const staged = `hostfs${guest}`;
    files.push({ name: staged, path: host, mode: 0o755 });
    // rm first: the guest path may be a busybox symlink, and cp would write through it
    steps.push(`mkdir -p ${shellQuote(dirname(guest))}`, `rm -f ${shellQuote(guest)}`);
    steps.push(`mv /lab/files/${shellQuote(staged)} ${shellQuote(guest)}`);
  }
  for (const w of wanted) {
    for (const link of w.links ?? []) {
      const at = `${dirname(w.guest)}/${link}`;
      steps.push(`rm -f ${shellQuote(at)}`, `ln -s ${shellQuote(w.guest)} ${shellQuote(at)}`);
    }
  }
  return { files, setup: steps.join(" && ") };
}
