/**
 * The run-pre record a live patch module carries: for every function it replaces (and every
 * same-object function its new code calls at a sympos), the code of that function's original
 * build, so `kpatch load` can compare it with the running kernel's text
 * (/proc/kcore) before insmod. kpatch-build writes it (src/kpatch-build, through
 * src/klp/build-module.ts); kpatch load reads it (live-check.ts). This file is the format's one
 * home.
 *
 * Section `.kpatch.runpre`, SHT_PROGBITS without SHF_ALLOC: the module loader lays out only
 * SHF_ALLOC sections (kernel/module/main.c layout_sections()), so the record costs the kernel no
 * memory, and strip --strip-debug keeps it. Little-endian, unsigned LEB128 numbers ("u"):
 *
 *   "KPRP" (4 bytes), version (1 byte: 1), function count (u)
 *   per function:
 *     object (u length + UTF-8: vmlinux or a module name), name (same), sympos (u), size (u),
 *     the original bytes (size bytes),
 *     range count (u), then ranges in offset order, each: offset from the previous range's
 *     offset (u), length (u), kind (1 byte: 0 = filled in by a relocation, else a site kind's code from
 *     site-kinds.ts)
 *
 * A site's range starts at its instruction; its length is the site's (an alternative's instrlen)
 * or 0 for "its instruction". A reader refuses another version rather than guessing.
 */
import type { FunctionCode, Site } from "./function-code.js";
import { siteKind, siteKindByCode } from "./site-kinds.js";

export const RUNPRE_SECTION = ".kpatch.runpre";
const RUNPRE_VERSION = 1;
const MAGIC = [0x4b, 0x50, 0x52, 0x50]; // "KPRP"
const LINKED = 0;

export interface RecordedFunction {
  /** vmlinux or the module's name, as the klp_object names it. */
  object: string;
  name: string;
  sympos: number;
  code: FunctionCode;
}

class Writer {
  private readonly out: number[] = [];
  u(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`run-pre record: bad number ${n}`);
    do {
      const b = n % 128;
      n = Math.floor(n / 128);
      this.out.push(n > 0 ? b | 0x80 : b);
    } while (n > 0);
  }
  byte(b: number): void {
    this.out.push(b);
  }
  bytes(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]!);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

export class RunPreRecordError extends Error {}

class Reader {
  private at = 0;
  constructor(private readonly data: Uint8Array) {}
  private need(n: number): void {
    if (this.at + n > this.data.length) throw new RunPreRecordError("truncated");
  }
  byte(): number {
    this.need(1);
    return this.data[this.at++]!;
  }
  u(): number {
    let n = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = this.byte();
      n += (b & 0x7f) * shift;
      if (!Number.isSafeInteger(n)) throw new RunPreRecordError("number too large");
      if (!(b & 0x80)) return n;
    }
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.data.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  str(): string {
    return Buffer.from(this.bytes(this.u())).toString("utf8");
  }
  get end(): boolean {
    return this.at === this.data.length;
  }
}

interface Range {
  offset: number;
  length: number;
  kind: number;
}

/** The linked bytes as runs, and the sites, in offset order. */
function ranges(code: FunctionCode): Range[] {
  const out: Range[] = [];
  for (let i = 0; i < code.linked.length; ) {
    if (!code.linked[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < code.linked.length && code.linked[j]) j++;
    out.push({ offset: i, length: j - i, kind: LINKED });
    i = j;
  }
  for (const [offset, site] of code.sites)
    out.push({ offset, length: site.length ?? 0, kind: siteKind(site.kind).code });
  return out.sort((a, b) => a.offset - b.offset || a.kind - b.kind);
}

export function encodeRunPreRecord(functions: readonly RecordedFunction[]): Uint8Array {
  const w = new Writer();
  w.bytes(MAGIC);
  w.byte(RUNPRE_VERSION);
  w.u(functions.length);
  for (const f of functions) {
    w.str(f.object);
    w.str(f.name);
    w.u(f.sympos);
    w.u(f.code.bytes.length);
    w.bytes(f.code.bytes);
    const list = ranges(f.code);
    w.u(list.length);
    let last = 0;
    for (const r of list) {
      w.u(r.offset - last);
      w.u(r.length);
      w.byte(r.kind);
      last = r.offset;
    }
  }
  return w.done();
}

/** Throws RunPreRecordError (with what is wrong) for a record this version cannot read. */
export function decodeRunPreRecord(data: Uint8Array, file = "the module"): RecordedFunction[] {
  const r = new Reader(data);
  for (const b of MAGIC) if (r.byte() !== b) throw new RunPreRecordError("not a run-pre record");
  const version = r.byte();
  if (version !== RUNPRE_VERSION)
    throw new RunPreRecordError(`version ${version}; this kpatch reads version ${RUNPRE_VERSION}`);
  const out: RecordedFunction[] = [];
  for (let n = r.u(); n > 0; n--) {
    const object = r.str();
    const name = r.str();
    const sympos = r.u();
    const size = r.u();
    const bytes = Uint8Array.from(r.bytes(size));
    const linked = new Uint8Array(size);
    const sites = new Map<number, Site>();
    let last = 0;
    for (let k = r.u(); k > 0; k--) {
      const offset = last + r.u();
      const length = r.u();
      const kind = r.byte();
      if (offset + length > size) throw new RunPreRecordError(`${name}: a range past the function's end`);
      if (kind === LINKED) linked.fill(1, offset, offset + length);
      else {
        const info = siteKindByCode(kind);
        if (!info) throw new RunPreRecordError(`${name}: unknown site kind ${kind}`);
        sites.set(offset, { kind: info.kind, evidence: "recorded", ...(length ? { length } : {}) });
      }
      last = offset;
    }
    out.push({ object, name, sympos, code: { name, file, bytes, linked, sites, weak: false } });
  }
  if (!r.end) throw new RunPreRecordError("trailing bytes");
  return out;
}
