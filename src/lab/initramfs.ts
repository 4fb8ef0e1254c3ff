/**
 * The lab's initramfs: busybox-static and our /init (lab/initramfs/init), plus per-run
 * archives with the files and commands of one guest run.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../util/atomic-write.js";
import { KpatchError } from "../util/errors.js";
import { type CpioEntry, parentDirs, S_IFCHR, S_IFDIR, S_IFREG, writeCpio } from "./cpio.js";

const INITRAMFS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "lab", "initramfs");
const INIT = join(INITRAMFS_DIR, "init");
/** The /init that boots a Debian root disk with systemd instead (see GuestOptions.rootDisk). */
const INIT_ROOT = join(INITRAMFS_DIR, "init-root");
const BUSYBOX = "/bin/busybox";

/** Whether the base archive at `out` holds the current /init and busybox (compared byte for byte). */
export function initramfsIsCurrent(out: string): boolean {
  try {
    const archive = readFileSync(out);
    return archive.includes(readFileSync(INIT)) && archive.includes(readFileSync(BUSYBOX));
  } catch {
    return false;
  }
}

/** The base archive: busybox, /init, and `extra` entries (a stock kernel's modules). */
export function buildBaseInitramfs(out: string, extra: readonly CpioEntry[] = []): void {
  let busybox: Uint8Array;
  try {
    busybox = readFileSync(BUSYBOX);
  } catch (e) {
    throw new KpatchError("LAB_BUSYBOX", `Cannot read ${BUSYBOX}: install busybox-static`, {}, { cause: e });
  }
  const entries: CpioEntry[] = [
    ...["bin", "dev", "proc", "sys", "tmp", "lab", "lab/files", "lab/cmds"].map((name) => ({
      name,
      mode: S_IFDIR | 0o755,
    })),
    { name: "dev/console", mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    { name: "bin/busybox", mode: S_IFREG | 0o755, data: busybox },
    { name: "init", mode: S_IFREG | 0o755, data: readFileSync(INIT) },
    ...extra,
  ];
  writeFileAtomic(out, writeCpio(entries));
}

export interface GuestFile {
  /** Name in the guest, relative to /lab/files (default: the host file's base name). */
  name?: string;
  /** Host path to copy in, or the contents. */
  path?: string;
  data?: Uint8Array | string;
  mode?: number;
}

/**
 * The per-run archive: /lab/files/<name> for each file, /lab/cmds/NNN for each command; with
 * init "root", lab/initramfs/init-root over the base archive's /init.
 */
export function runArchive(
  files: readonly (string | GuestFile)[],
  commands: readonly string[],
  init: "busybox" | "root" = "busybox",
): Uint8Array {
  const enc = new TextEncoder();
  const entries: CpioEntry[] = [];
  if (init === "root") entries.push({ name: "init", mode: S_IFREG | 0o755, data: readFileSync(INIT_ROOT) });
  for (const f of files) {
    const file: GuestFile = typeof f === "string" ? { path: f } : f;
    const name = file.name ?? (file.path ? basename(file.path) : undefined);
    if (!name)
      throw new KpatchError("LAB_FILE", "Cannot add a file to the guest: it has neither a name nor a path");
    let data: Uint8Array;
    if (file.data !== undefined) data = typeof file.data === "string" ? enc.encode(file.data) : file.data;
    else {
      try {
        data = readFileSync(file.path!);
      } catch (e) {
        throw new KpatchError("LAB_FILE", `Cannot read ${file.path}: ${(e as Error).message}`, {
          file: file.path,
        });
      }
    }
    entries.push({ name: `lab/files/${name}`, mode: S_IFREG | (file.mode ?? 0o755), data });
  }
  commands.forEach((c, i) => {
    entries.push({
      name: `lab/cmds/${String(i).padStart(3, "0")}`,
      mode: S_IFREG | 0o644,
      data: enc.encode(`${c}\n`),
    });
  });
  const dirs = parentDirs(entries.map((e) => e.name));
  return writeCpio([...dirs, ...entries]);
}
