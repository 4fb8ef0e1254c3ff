import assert from "node:assert/strict";
import test from "node:test";
import { parseConfig } from "./kernel-config.js";

test("parseConfig() reads values and 'is not set' lines, ignoring comments", () => {
  const c = parseConfig('# comment\nCONFIG_A=y\nCONFIG_B="str"\n# CONFIG_C is not set\nCONFIG_D=16\n');
  assert.deepEqual(
    [...c],
    [
      ["CONFIG_A", "y"],
      ["CONFIG_B", '"str"'],
      ["CONFIG_C", "n"],
      ["CONFIG_D", "16"],
    ],
  );
});
