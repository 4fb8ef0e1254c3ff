/**
 * Bounds-checked access to the input bytes. Every record is checked against the file size with
 * `need()` BEFORE its fields are read, so a DataView never throws; 64-bit values become numbers
 * only through `toNumber()`, which refuses what a double cannot hold exactly.
 */
import type { ErrorLocation } from "../util/errors.js";
import { ElfError, type ElfErrorCode } from "./elf-error.js";

export class ElfInput {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** The same bytes as a Buffer: native indexOf and latin1 decoding for strings. */
  readonly buffer: Buffer;
  readonly file: string | undefined;

  constructor(bytes: Uint8Array, file?: string) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.file = file;
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Throws `code` unless [offset, offset + length) lies inside the file. */
  need(
    offset: number,
    length: number,
    what: string,
    loc: ErrorLocation = {},
    code: ElfErrorCode = "ELF_TRUNCATED",
  ): void {
    if (offset < 0 || length < 0 || offset > this.bytes.length || length > this.bytes.length - offset) {
      throw new ElfError(
        code,
        `Cannot read ${what}: bytes 0x${offset.toString(16)}..0x${(offset + length).toString(16)} ` +
          `are past the end of the file (0x${this.bytes.length.toString(16)} bytes)`,
        this.loc({ offset, ...loc }),
      );
    }
  }

  loc(loc: ErrorLocation): ErrorLocation {
    return this.file === undefined ? loc : { file: this.file, ...loc };
  }

  u8(offset: number): number {
    return this.view.getUint8(offset);
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  u64(offset: number): bigint {
    return this.view.getBigUint64(offset, true);
  }
  s64(offset: number): bigint {
    return this.view.getBigInt64(offset, true);
  }
}

const CACHED = 1 << 16;
const smallPositive: bigint[] = new Array(CACHED);
const smallNegative: bigint[] = new Array(CACHED);

/**
 * A signed 64-bit field (r_addend) as bigint. Most addends are small (-4, offsets into a section);
 * those come from a cache instead of allocating a bigint per relocation.
 */
export function readInt64(view: DataView, at: number): bigint {
  const lo = view.getUint32(at, true);
  const hi = view.getInt32(at + 4, true);
  if (hi === 0 && lo < CACHED) {
    let cached = smallPositive[lo];
    if (cached === undefined) {
      cached = BigInt(lo);
      smallPositive[lo] = cached;
    }
    return cached;
  }
  if (hi === -1 && lo >= 2 ** 32 - CACHED) {
    const k = 2 ** 32 - lo;
    let cached = smallNegative[k];
    if (cached === undefined) {
      cached = BigInt(-k);
      smallNegative[k] = cached;
    }
    return cached;
  }
  return view.getBigInt64(at, true);
}

/** The one checked conversion of a 64-bit size, offset or index to a number. */
export function toNumber(value: bigint, what: string, loc: ErrorLocation): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ElfError(
      "ELF_VALUE_TOO_LARGE",
      `Cannot use ${what} 0x${value.toString(16)}: it is too large`,
      loc,
    );
  }
  return Number(value);
}

/** A string table inside the input: names are byte strings, decoded as latin1 so they round-trip. */
export class StringTableReader {
  private readonly input: ElfInput;
  private readonly start: number;
  private readonly end: number;
  private readonly section: string;
  /** The gABI ends every string table with a NUL; when one does not, searches stop at its end. */
  private readonly terminated: boolean;

  /** The caller has checked that [start, start + size) is inside the file. */
  constructor(input: ElfInput, start: number, size: number, section: string) {
    this.input = input;
    this.start = start;
    this.end = start + size;
    this.section = section;
    this.terminated = size > 0 && input.bytes[start + size - 1] === 0;
  }

  get(offset: number, what: string, loc: ErrorLocation = {}): string {
    const at = this.start + offset;
    if (offset >= this.end - this.start) {
      if (offset === 0) return ""; // an empty table still names everything ""
      throw new ElfError(
        "ELF_BAD_STRING",
        `Cannot read the name of ${what}: offset 0x${offset.toString(16)} is past the end of ${this.section}`,
        this.input.loc(loc),
      );
    }
    const buf = this.input.buffer;
    const nul = this.terminated ? buf.indexOf(0, at) : buf.subarray(at, this.end).indexOf(0) + at;
    if (nul < at || nul >= this.end) {
      throw new ElfError(
        "ELF_BAD_STRING",
        `Cannot read the name of ${what}: the string at 0x${offset.toString(16)} in ${this.section} has no NUL`,
        this.input.loc(loc),
      );
    }
    return nul === at ? "" : this.input.buffer.toString("latin1", at, nul);
  }
}
