import assert from "node:assert/strict";
import test from "node:test";
import { compilerPackage } from "./build-root.js";

test("compilerPackage() names the Debian package of the compiler a kernel config names", () => {
  assert.equal(compilerPackage("x86_64-linux-gnu-gcc-14"), "gcc-14");
  assert.equal(compilerPackage("x86_64-linux-gnu-gcc-12"), "gcc-12");
  assert.equal(compilerPackage("gcc-14"), "gcc-14");
  assert.equal(compilerPackage("gcc"), undefined);
  assert.equal(compilerPackage("clang-19"), undefined);
});
