import assert from "node:assert/strict";
import test from "node:test";
import { parseConfig } from "../kpatch-build/kernel-config.js";
import { configMismatches } from "./kernel-config.js";

test("configMismatches() lists options that did not hold, counting absent as n", () => {
  const frag = parseConfig("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n# CONFIG_D is not set\n");
  const cfg = parseConfig("CONFIG_A=y\nCONFIG_B=y\n");
  assert.deepEqual(configMismatches(frag, cfg), [
    { option: "CONFIG_B", wanted: "n", got: "y" },
    { option: "CONFIG_C", wanted: "m", got: "n" },
  ]);
});
