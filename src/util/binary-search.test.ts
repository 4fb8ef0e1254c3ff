import assert from "node:assert/strict";
import { test } from "node:test";
import { findRangeAt, lowerBound, upperBound } from "./binary-search.js";

const id = (v: number) => v;

test("lowerBound() and upperBound() agree with a linear scan, duplicates and ends included", () => {
  const sorted = [1, 3, 3, 3, 7, 9, 9, 20];
  for (let x = -1; x <= 22; x++) {
    assert.equal(lowerBound(sorted, x, id), sorted.filter((v) => v < x).length, `lowerBound ${x}`);
    assert.equal(upperBound(sorted, x, id), sorted.filter((v) => v <= x).length, `upperBound ${x}`);
  }
  assert.equal(lowerBound([], 5, id), 0);
  assert.equal(upperBound(Float64Array.from([2, 4]), 4, id), 2);
  const addrs = [0xffffffff81000000n, 0xffffffff82000000n];
  assert.equal(
    upperBound(addrs, 0xffffffff81ffffffn, (a) => a),
    1,
    "bigint kernel addresses",
  );
  assert.equal(
    lowerBound(addrs, 0xffffffff82000000n, (a) => a),
    1,
  );
});

test("findRangeAt() finds the range holding an offset and nothing in gaps", () => {
  const ranges = [
    { start: 0, end: 4, n: "a" },
    { start: 4, end: 10, n: "b" },
    { start: 16, end: 17, n: "c" },
  ];
  assert.equal(findRangeAt(ranges, 0)?.n, "a");
  assert.equal(findRangeAt(ranges, 3)?.n, "a");
  assert.equal(findRangeAt(ranges, 4)?.n, "b");
  assert.equal(findRangeAt(ranges, 9)?.n, "b");
  assert.equal(findRangeAt(ranges, 10), undefined);
  assert.equal(findRangeAt(ranges, 16)?.n, "c");
  assert.equal(findRangeAt(ranges, 17), undefined);
  assert.equal(findRangeAt(ranges, -1), undefined);
  assert.equal(findRangeAt([], 0), undefined);
});
