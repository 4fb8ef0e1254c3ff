/**
 * A signed apt repository on this machine for lab guests, as an operator publishes a fleet's
 * packages: the .deb files of a directory indexed by apt-ftparchive (a flat repository, `./`),
 * its Release signed with a fresh ed25519 key (gpg, InRelease), the public key next to them, and
 * the directory served over HTTP (test/helpers/http-server.ts). A guest on QEMU's user network
 * trusts it through `signed-by` only (its own keyring file), as the README's fleet section says.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type HttpServer, serveDirectory } from "./http-server.js";

/**
 * Of the tools a Debian guest with this repository needs on this machine (debootstrap for the
 * guest's root file system, apt-ftparchive and gpg for the repository), those missing.
 */
export function missingRepositoryTools(): string[] {
  return ["debootstrap", "apt-ftparchive", "gpg"].filter(
    (t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0,
  );
}

export interface SignedAptRepository {
  server: HttpServer;
  /**
   * The guest's shell command that trusts the key (/etc/apt/keyrings/kplab-repo.gpg), adds the
   * repository to apt's sources and runs apt-get update.
   */
  guestSetup: string;
}

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Indexes and signs the .deb files in `repo` (a new key in `gnupgHome`, made here) and serves
 * the directory; close the server when done.
 */
export async function serveSignedAptRepository(
  repo: string,
  gnupgHome: string,
): Promise<SignedAptRepository> {
  mkdirSync(gnupgHome, { recursive: true, mode: 0o700 });
  const gpg = ["--batch", "--homedir", gnupgHome, "--passphrase", "", "--pinentry-mode", "loopback"];
  run("gpg", [
    ...gpg,
    "--quick-gen-key",
    "kpatch-ts lab repository <lab@example.org>",
    "ed25519",
    "sign",
    "never",
  ]);
  writeFileSync(join(repo, "Packages"), run("apt-ftparchive", ["packages", "."], repo));
  writeFileSync(join(repo, "Release"), run("apt-ftparchive", ["release", "."], repo));
  run("gpg", [...gpg, "--clearsign", "-o", join(repo, "InRelease"), join(repo, "Release")]);
  const key = join(gnupgHome, "kplab-repo.gpg");
  run("gpg", [...gpg, "--export", "-o", key]);
  copyFileSync(key, join(repo, "kplab-repo.gpg"));
  const server = await serveDirectory(repo);
  const keyring = "/etc/apt/keyrings/kplab-repo.gpg";
  const guestSetup = [
    "mkdir -p /etc/apt/keyrings",
    `/usr/lib/apt/apt-helper download-file ${server.guestUrl}/kplab-repo.gpg ${keyring}`,
    `echo 'deb [signed-by=${keyring}] ${server.guestUrl}/ ./' > /etc/apt/sources.list.d/kplab-repo.list`,
    "apt-get -q update",
  ].join(" && ");
  return { server, guestSetup };
}
