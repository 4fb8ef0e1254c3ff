/**
 * What the fuzz tests share: their size and seed ($KPATCH_FUZZ_CASES, $KPATCH_FUZZ_SEED), the
 * time that counts as a hang, and the seeded PRNG that picks each case's mutations.
 */

/** Cases to run: $KPATCH_FUZZ_CASES, else the suite's size for this test. */
export function fuzzCases(suiteSize: number): number {
  return Number(process.env["KPATCH_FUZZ_CASES"] ?? suiteSize);
}

export const FUZZ_SEED = Number(process.env["KPATCH_FUZZ_SEED"] ?? 0x6b706174);

/** A case slower than this counts as a hang. */
export const SLOW_MS = 2000;

/** mulberry32: small, fast, good enough to pick mutations. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
