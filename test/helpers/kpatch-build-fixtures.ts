/** What the kpatch-build CLI tests share: the lab, the command, the fixture patches of the lab's series. */
import { join } from "node:path";
import { DEFAULT_SERIES } from "../../src/lab/paths.js";
import { requireLab } from "../../src/lab/setup.js";

export const lab = requireLab(DEFAULT_SERIES);
export const KPATCH_BUILD = join(import.meta.dirname, "..", "..", "src", "cli", "kpatch-build.js");
/** The repository (this file is dist/test/helpers/kpatch-build-fixtures.js). */
const REPO = join(import.meta.dirname, "..", "..", "..");

/** test/fixtures/patches/<series>/<name>.patch */
export function fixturePatch(name: string): string {
  return join(REPO, "test", "fixtures", "patches", lab.series, `${name}.patch`);
}
