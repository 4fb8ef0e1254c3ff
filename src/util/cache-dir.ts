/**
 * The one cache of kpatch-ts, outside the repository: $KPATCH_TS_CACHE, or ~/.cache/kpatch-ts.
 * Every part (original objects, kpatch-macros.h, entry sizes, the lab) lives below it.
 */
import { homedir } from "node:os";
import { join } from "node:path";

function cacheRoot(): string {
  return process.env["KPATCH_TS_CACHE"] || join(homedir(), ".cache", "kpatch-ts");
}

/** A path below the cache root, e.g. cachePath("objects", key). */
export function cachePath(...parts: string[]): string {
  return join(cacheRoot(), ...parts);
}
