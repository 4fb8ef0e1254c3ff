import assert from "node:assert/strict";
import { test } from "node:test";
import { StringTableBuilder } from "./string-table.js";

function build(strings: string[]): { table: { size: number; offsetOf(s: string): number }; bytes: Buffer } {
  const builder = new StringTableBuilder();
  const ids = new Map(strings.map((s) => [s, builder.add(s)]));
  builder.finish();
  const bytes = Buffer.alloc(builder.size);
  builder.write(bytes, 0);
  return { table: { size: builder.size, offsetOf: (s) => builder.offsetOf(ids.get(s)!) }, bytes };
}

function at(bytes: Buffer, offset: number): string {
  return bytes.toString("latin1", offset, bytes.indexOf(0, offset));
}

test("StringTableBuilder stores a string that ends another one inside it", () => {
  const names = [".text", ".rela.text", ".text.foo", ".rela.text.foo", "foo", "o", ".symtab", "symtab"];
  const { table, bytes } = build(names);
  // Kept: ".rela.text", ".rela.text.foo", ".symtab" (the rest are their tails).
  assert.equal(table.size, 1 + ".rela.text".length + 1 + ".rela.text.foo".length + 1 + ".symtab".length + 1);
  for (const s of names) assert.equal(at(bytes, table.offsetOf(s)), s);
  assert.equal(bytes[0], 0);
  assert.equal(table.offsetOf(".text"), table.offsetOf(".rela.text") + 5);
});

test("StringTableBuilder stores each string once and keeps latin1 bytes", () => {
  const { table, bytes } = build(["a\u00e9", "a\u00e9", "b", "", "ab"]);
  assert.equal(table.size, 1 + 3 + 3, "b is the tail of ab");
  assert.equal(bytes[table.offsetOf("a\u00e9") + 1], 0xe9);
  assert.equal(at(bytes, table.offsetOf("b")), "b");
});

test("StringTableBuilder with nothing in it is the single NUL", () => {
  const { table, bytes } = build([]);
  assert.equal(table.size, 1);
  assert.deepEqual([...bytes], [0]);
});
