/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs. Several archives
 * concatenated are unpacked in order, each over the previous one: the lab keeps one cached
 * base archive and appends a small one per guest run with that run's files and commands.
 */
export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  name: string;
  /** Full st_mode: type bits and permissions (e.g. 0o100755 for an executable). */
  mode: number;
  data?: Uint8Array;
  /** For device nodes. */
  rdevMajor?: number;
  rdevMinor?: number;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;

const HEADER_SIZE = 110;
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function header(ino: number, e: CpioEntry, nameSize: number, fileSize: number): string {
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const fields = [
    ino,
    e.mode,
    0, // uid
    0, // gid
    e.mode & S_IFDIR ? 2 : 1, // nlink
    0, // mtime: fixed, so archives are reproducible
    fileSize,
    0,
    0, // devmajor, devminor
    e.rdevMajor ?? 0,
    e.rdevMinor ?? 0,
    nameSize,
    0, // check
  ];
  return `070701${fields.map(hex).join("")}`;
}

/** Build one archive (with its trailer) from entries; directories should precede their contents. */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const all = [...entries, { name: "TRAILER!!!", mode: 0 }];
  const enc = new TextEncoder();
  const parts = all.map((e) => ({ e, name: enc.encode(`${e.name}\0`), data: e.data ?? new Uint8Array(0) }));
  let size = 0;
  for (const p of parts) {
    size += HEADER_SIZE + p.name.length;
    size += pad4(size);
    size += p.data.length;
    size += pad4(size);
  }
  const out = new Uint8Array(size);
  let pos = 0;
  parts.forEach((p, i) => {
    out.set(enc.encode(header(i + 1, p.e, p.name.length, p.data.length)), pos);
    pos += HEADER_SIZE;
    out.set(p.name, pos);
    pos += p.name.length;
    pos += pad4(pos);
    out.set(p.data, pos);
    pos += p.data.length;
    pos += pad4(pos);
  });
  return out;
}

/** Directory entries for every parent of the given paths, parents first. */
export function parentDirs(paths: readonly string[]): CpioEntry[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return [...dirs].sort().map((name) => ({ name, mode: S_IFDIR | 0o755 }));
}
