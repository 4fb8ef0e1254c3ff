import assert from "node:assert/strict";
import test from "node:test";
import { configMismatches, parseConfig } from "./kernel-config.js";

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

test("configMismatches() lists options that did not hold, counting absent as n", () => {
  const frag = parseConfig("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n# CONFIG_D is not set\n");
  const cfg = parseConfig("CONFIG_A=y\nCONFIG_B=y\n");
  assert.deepEqual(configMismatches(frag, cfg), [
    { option: "CONFIG_B", wanted: "n", got: "y" },
    { option: "CONFIG_C", wanted: "m", got: "n" },
  ]);
});
