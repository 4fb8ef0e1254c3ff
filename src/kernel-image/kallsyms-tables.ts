/**
 * The kernel's own symbol tables inside a vmlinux that has no ELF symbol table (the one a vmlinuz
 * carries): the arrays scripts/kallsyms.c emits into .rodata, found by their shape, since nothing
 * names them. Layout (each array starts 8-byte aligned; n symbols; M = ceil(n / 256)):
 *
 *   kallsyms_num_syms     u32 n
 *   kallsyms_names        n entries: length (ULEB128, 1 or 2 bytes), then that many token bytes;
 *                         the expansion's first character is the type letter, the rest the name
 *   kallsyms_markers      u32[M]: offset in names of symbol 256*k
 *   kallsyms_token_table  256 NUL-terminated strings
 *   kallsyms_token_index  u16[256]: offset of each string in the token table
 *   kallsyms_offsets      s32[n], kallsyms_relative_base u64 (KALLSYMS_BASE_RELATIVE)
 *   kallsyms_seqs_of_names u8[3n] (6.2+; 6.1.y has it backported)
 *
 * 6.12 emits them in that order; 6.1 puts offsets and relative_base first and seqs_of_names
 * between markers and the token table. Addresses (kernel/kallsyms.c kallsyms_sym_address): with
 * KALLSYMS_ABSOLUTE_PERCPU, an offset >= 0 is an absolute value (per-CPU symbols) and a negative
 * one means relative_base - 1 - offset; without it, relative_base + (u32)offset.
 *
 * How the tables are found: the token index (256 increasing u16 from 0, each string of the table
 * before it ending where the next begins), then num_syms (a count whose names decode to
 * "<type><name>" strings and whose markers follow the names exactly), then the layout that puts
 * the markers where the token table or seqs_of_names begins.
 */
import type { KernelSymbol } from "./kernel-symbols.js";

const KSYM_NAME_LEN = 512;
const MAX_SYMS = 1 << 23;

export interface KallsymsLayout {
  /** Offsets of each table in the searched bytes. */
  numSyms: number;
  names: number;
  markers: number;
  tokenTable: number;
  tokenIndex: number;
  offsets: number;
  relativeBase: number;
  count: number;
  absolutePercpu: boolean;
  /** "6.1" (offsets first) or "6.2+" (offsets after the token index). */
  order: "6.1" | "6.2+";
}

const align8 = (n: number): number => (n + 7) & ~7;

class Bytes {
  readonly b: Uint8Array;
  readonly v: DataView;
  constructor(b: Uint8Array) {
    this.b = b;
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u16(at: number): number {
    return this.v.getUint16(at, true);
  }
  u32(at: number): number {
    return this.v.getUint32(at, true);
  }
}

/** The token strings and where their table and index start, or undefined when absent. */
function findTokens(d: Bytes): { tokens: string[]; table: number; index: number } | undefined {
  const { b } = d;
  for (let p = 0; p + 512 <= b.length; p += 8) {
    if (d.u16(p) !== 0) continue;
    const second = d.u16(p + 2);
    if (second < 2 || second > 64) continue;
    const idx: number[] = [0];
    let ok = true;
    for (let i = 1; i < 256 && ok; i++) {
      const v = d.u16(p + 2 * i);
      ok = v >= idx[i - 1]! + 2;
      idx.push(v);
    }
    if (!ok) continue;
    const last = idx[255]!;
    // The table starts 8-aligned before p, its last string ends (with padding < 8) at p.
    for (let t = (p - last - 2) & ~7; t >= 0 && t >= p - last - KSYM_NAME_LEN; t -= 8) {
      const tokens = readTokens(b, t, idx, p);
      if (tokens) return { tokens, table: t, index: p };
    }
  }
  return undefined;
}

function readTokens(b: Uint8Array, t: number, idx: number[], end: number): string[] | undefined {
  const tokens: string[] = [];
  for (let i = 0; i < 256; i++) {
    const start = t + idx[i]!;
    const stop = i < 255 ? t + idx[i + 1]! - 1 : b.indexOf(0, start);
    if (stop < 0 || stop >= end || b[stop] !== 0) return undefined;
    for (let k = start; k < stop; k++) if (b[k] === 0 || b[k]! > 0x7e) return undefined;
    tokens.push(String.fromCharCode(...b.subarray(start, stop)));
  }
  const tail = t + idx[255]! + tokens[255]!.length + 1;
  if (end - tail >= 8) return undefined;
  for (let k = tail; k < end; k++) if (b[k] !== 0) return undefined;
  return tokens;
}

/** Length and first token byte offset of the names entry at `at`. */
function entry(b: Uint8Array, at: number): { len: number; data: number } {
  const first = b[at]!;
  if ((first & 0x80) === 0) return { len: first, data: at + 1 };
  return { len: (first & 0x7f) | (b[at + 1]! << 7), data: at + 2 };
}

function expand(b: Uint8Array, tokens: string[], at: number): { text: string; next: number } {
  const { len, data } = entry(b, at);
  let text = "";
  for (let k = 0; k < len; k++) text += tokens[b[data + k]!];
  return { text, next: data + len };
}

const PLAUSIBLE = /^[A-Za-z][\x21-\x7e]+$/;

/** Whether the first few names at `names` decode to "<type><name>" strings. */
function namesLookRight(b: Uint8Array, tokens: string[], names: number, count: number): boolean {
  let at = names;
  for (let i = 0; i < Math.min(count, 32); i++) {
    if (at >= b.length || b[at] === 0) return false;
    const { text, next } = expand(b, tokens, at);
    if (next > b.length || !PLAUSIBLE.test(text)) return false;
    at = next;
  }
  return true;
}

/** The names' end, after checking every 256th entry against the markers; undefined on a mismatch. */
function walkNames(d: Bytes, names: number, count: number): { end: number; markers: number } | undefined {
  const { b } = d;
  const marks: number[] = [];
  let at = names;
  for (let i = 0; i < count; i++) {
    if (at >= b.length) return undefined;
    if ((i & 0xff) === 0) marks.push(at - names);
    const { len, data } = entry(b, at);
    if (len === 0) return undefined;
    at = data + len;
  }
  const markers = align8(at);
  if (markers + 4 * marks.length > b.length) return undefined;
  for (let k = 0; k < marks.length; k++) if (d.u32(markers + 4 * k) !== marks[k]) return undefined;
  return { end: at, markers };
}

/** Where the kallsyms tables are in `bytes` (a vmlinux's .rodata), or undefined when they are not. */
export function findKallsymsTables(bytes: Uint8Array): (KallsymsLayout & { tokens: string[] }) | undefined {
  const d = new Bytes(bytes);
  const tok = findTokens(d);
  if (!tok) return undefined;
  const { b } = d;
  // num_syms comes before the token table in both layouts, within names + markers + seqs.
  for (let q = tok.table - 16; q >= 0 && tok.table - q < 96 << 20; q -= 8) {
    const count = d.u32(q);
    if (count < 16 || count > MAX_SYMS || d.u32(q + 4) !== 0) continue;
    const names = q + 8;
    if (!namesLookRight(b, tok.tokens, names, count)) continue;
    const walked = walkNames(d, names, count);
    if (!walked) continue;
    const markersEnd = align8(walked.markers + 4 * Math.ceil(count / 256));
    const offsetsSize = align8(4 * count);
    let layout: Omit<KallsymsLayout, "absolutePercpu"> | undefined;
    if (markersEnd === tok.table) {
      const offsets = tok.index + 512;
      layout = { offsets, relativeBase: offsets + offsetsSize, order: "6.2+" } as typeof layout;
    } else if (align8(markersEnd + 3 * count) === tok.table) {
      layout = { offsets: q - 8 - offsetsSize, relativeBase: q - 8, order: "6.1" } as typeof layout;
    }
    if (!layout || layout.offsets < 0 || layout.relativeBase + 8 > b.length) continue;
    let negative = 0;
    for (let i = 0; i < count; i++) if (d.v.getInt32(layout.offsets + 4 * i, true) < 0) negative++;
    return {
      ...layout,
      numSyms: q,
      names,
      markers: walked.markers,
      tokenTable: tok.table,
      tokenIndex: tok.index,
      count,
      absolutePercpu: negative > count / 2,
      tokens: tok.tokens,
    };
  }
  return undefined;
}

/** The symbols the kallsyms tables in `bytes` describe, in kallsyms order; undefined when there are none. */
export function readKallsymsTables(bytes: Uint8Array): KernelSymbol[] | undefined {
  const found = findKallsymsTables(bytes);
  if (!found) return undefined;
  const d = new Bytes(bytes);
  const base = d.v.getBigUint64(found.relativeBase, true);
  const out: KernelSymbol[] = new Array(found.count);
  let at = found.names;
  for (let i = 0; i < found.count; i++) {
    const { text, next } = expand(bytes, found.tokens, at);
    at = next;
    const off = d.v.getInt32(found.offsets + 4 * i, true);
    let address: bigint;
    if (!found.absolutePercpu) address = base + BigInt(off >>> 0);
    else if (off >= 0) address = BigInt(off);
    else address = base - 1n - BigInt(off);
    out[i] = { name: text.slice(1), address, type: text[0]! };
  }
  return out;
}
