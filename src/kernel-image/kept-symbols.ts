/**
 * A vmlinux's ELF symbol list kept on disk, so a fresh process (every kpatch-build CLI run) does
 * not make it again from the symbol table (fromElf and its address sort: ~0.3 s CPU for the
 * lab's ~150,000 symbols). One file per vmlinux:
 *
 *   <cache>/vmlinux-symbols/<sha256 of the key, 32 hex>   "<sha256 of the rest>\n<JSON>"
 *
 * The key is the vmlinux's identity when it was opened (real path, device, inode, size, mtime and
 * ctime, fileIdentity): a rebuilt, copied or touched vmlinux is another key. The file is written
 * complete or not at all (writeFileAtomic) and checked before use: its own key, its format, the
 * hash of its contents and the lengths of its arrays; anything else is ignored and made again.
 * Only names without a newline are kept (the names are one newline-joined string).
 */
import { createHash } from "node:crypto";
import { readFileSync, realpathSync, type Stats } from "node:fs";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";
import type { KernelSymbol, KernelSymbols, SymbolBlock } from "./kernel-symbols.js";

/** Bump with any change to what is stored or how a list is made from a symbol table. */
const FORMAT = 1;

interface Stored {
  format: number;
  key: string;
  names: string;
  types: string;
  /** base64 of a BigUint64Array each (little-endian, this machine's order: checked by the key). */
  addresses: string;
  sizes: string;
  /** base64 of an Int32Array: each symbol's block (-1: none). */
  blocks: string;
  files: string[];
}

/** What a file is, for a cache key: it changes when the file is replaced, copied over or touched. */
export function fileIdentity(path: string, st: Stats): string {
  return [realpathSync(path), st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs].join("\0");
}

const fileOf = (key: string) =>
  cachePath("vmlinux-symbols", createHash("sha256").update(key).digest("hex").slice(0, 32));
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const little = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function decode<T>(base64: string, make: (b: ArrayBuffer) => T): T {
  const b = Buffer.from(base64, "base64");
  return make(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

function parse(text: string, key: string): { list: KernelSymbol[]; blocks: SymbolBlock[] } | undefined {
  const nl = text.indexOf("\n");
  if (nl < 0 || sha256(text.slice(nl + 1)) !== text.slice(0, nl)) return undefined;
  const s = JSON.parse(text.slice(nl + 1)) as Stored;
  if (s.format !== FORMAT || s.key !== `${key}\0${little}`) return undefined;
  const names = s.names === "" ? [] : s.names.split("\n");
  const n = names.length;
  const addresses = decode(s.addresses, (b) => new BigUint64Array(b));
  const sizes = decode(s.sizes, (b) => new BigUint64Array(b));
  const inBlock = decode(s.blocks, (b) => new Int32Array(b));
  if (s.types.length !== n || addresses.length !== n || sizes.length !== n || inBlock.length !== n)
    return undefined;
  const blocks: SymbolBlock[] = s.files.map((file) => ({ file, names: new Set<string>() }));
  const list: KernelSymbol[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const block = inBlock[i]!;
    if (block >= blocks.length) return undefined;
    if (block >= 0) blocks[block]!.names.add(names[i]!);
    list[i] = { name: names[i]!, address: addresses[i]!, type: s.types[i]!, block, size: sizes[i]! };
  }
  return { list, blocks };
}

function store(key: string, symbols: KernelSymbols): void {
  const list = symbols.symbols;
  if (list.some((s) => s.name.includes("\n") || s.type.length !== 1 || s.size === undefined)) return;
  const stored: Stored = {
    format: FORMAT,
    key: `${key}\0${little}`,
    names: list.map((s) => s.name).join("\n"),
    types: list.map((s) => s.type).join(""),
    addresses: Buffer.from(BigUint64Array.from(list, (s) => s.address).buffer).toString("base64"),
    sizes: Buffer.from(BigUint64Array.from(list, (s) => s.size!).buffer).toString("base64"),
    blocks: Buffer.from(Int32Array.from(list, (s) => s.block ?? -1).buffer).toString("base64"),
    files: symbols.blocks.map((b) => b.file),
  };
  const json = JSON.stringify(stored);
  writeFileAtomic(fileOf(key), `${sha256(json)}\n${json}`);
}

/**
 * The symbols of the vmlinux whose identity is `key` (fileIdentity): the kept list when there is
 * a sound one, else `make()`'s, kept for the next process. `wrap` makes the KernelSymbols of a
 * kept list (its source named by the caller).
 */
export function keptSymbols(
  key: string,
  make: () => KernelSymbols,
  wrap: (list: KernelSymbol[], blocks: SymbolBlock[]) => KernelSymbols,
): KernelSymbols {
  let text: string | undefined;
  try {
    text = readFileSync(fileOf(key), "utf8");
  } catch {
    // None kept yet (or unreadable): made below.
  }
  const kept = text === undefined ? undefined : parse(text, key);
  if (kept) return wrap(kept.list, kept.blocks);
  const made = make();
  try {
    store(key, made);
  } catch {
    // A read-only or full cache: the list is still right, only not kept.
  }
  return made;
}
