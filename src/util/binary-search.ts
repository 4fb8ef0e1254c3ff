/**
 * Binary search over items sorted by a numeric key (a number, or a bigint address), the one implementation every sorted lookup
 * uses (symbol ranges, relocations in a range, code pieces, units, instruction ends).
 */

/** The index of the first item whose key is >= `x` (items.length when none is). */
export function lowerBound<T, K extends number | bigint>(
  items: ArrayLike<T>,
  x: K,
  key: (item: T) => K,
): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(items[mid]!) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The index of the first item whose key is > `x` (items.length when none is). */
export function upperBound<T, K extends number | bigint>(
  items: ArrayLike<T>,
  x: K,
  key: (item: T) => K,
): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(items[mid]!) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Of ranges sorted by start and not overlapping, the one whose [start, end) holds `offset`;
 * undefined when `offset` falls in a gap or outside them all.
 */
export function findRangeAt<T extends { start: number; end: number }>(
  ranges: readonly T[],
  offset: number,
): T | undefined {
  const r = ranges[upperBound(ranges, offset, (x) => x.start) - 1];
  return r && offset < r.end ? r : undefined;
}
