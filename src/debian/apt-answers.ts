/**
 * Answers of apt-cache and dpkg-query kept in the cache while nothing they read has changed, so
 * that a warm kpatch-build runs no apt or dpkg process (each costs 0.3-1.5 s on a loaded host):
 *
 *   <cache>/apt-answers/<options key>.json   { inputs: <fingerprint>, answers: { <query>: <answer> } }
 *
 * The fingerprint covers every file the queries read (the apt state's `inputs`: its sources,
 * lists, configuration and pinning, dpkg's status, its journal and architectures; each file's
 * inode, size and mtime in ns, a directory's entries recursively), the options apt runs with and
 * $APT_CONFIG. Any change (apt-get update, a package installed or removed, a new source or pin)
 * makes a new fingerprint and drops every answer of the old one. An answer is stored only when
 * the fingerprint is the same before and after its query, and the file is replaced atomically.
 */
import { createHash } from "node:crypto";
import { type BigIntStats, existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { cachePath } from "../util/cache-dir.js";

/** What an apt or dpkg query answers: a version, a list of versions, or nothing (null). */
export type AptAnswer = string | string[] | null;

/** The apt state the queries run with: its options and the files and directories they read. */
export interface AptInputs {
  options: readonly string[];
  inputs: readonly string[];
}

interface AnswerFile {
  inputs: string;
  answers: Record<string, AptAnswer>;
}

/** Depth limit for directories (apt's lists/partial, /etc/apt/sources.list.d, dpkg's updates). */
const MAX_DEPTH = 4;

function statLines(path: string, depth: number, out: string[]): void {
  let st: BigIntStats;
  try {
    st = lstatSync(path, { bigint: true });
  } catch {
    out.push(`${path}\tabsent`);
    return;
  }
  out.push(`${path}\t${st.mode}\t${st.ino}\t${st.size}\t${st.mtimeNs}\t${st.ctimeNs}`);
  if (st.isDirectory() && depth < MAX_DEPTH) {
    for (const name of readdirSync(path).sort()) statLines(join(path, name), depth + 1, out);
  }
}

/** The fingerprint of everything `apt`'s queries read (see the header). */
function aptInputsFingerprint(apt: AptInputs): string {
  const lines = [`options\t${JSON.stringify(apt.options)}`, `APT_CONFIG\t${process.env["APT_CONFIG"] ?? ""}`];
  for (const path of apt.inputs) statLines(path, 0, lines);
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

function answerFile(apt: AptInputs): string {
  const key = createHash("sha256").update(JSON.stringify(apt.options)).digest("hex").slice(0, 16);
  return cachePath("apt-answers", `${key}.json`);
}

function readAnswers(file: string, inputs: string): Record<string, AptAnswer> {
  if (!existsSync(file)) return {};
  try {
    const data = JSON.parse(readFileSync(file, "utf8")) as AnswerFile;
    return data.inputs === inputs && data.answers && typeof data.answers === "object" ? data.answers : {};
  } catch {
    // A file of another format or version: asked again and replaced.
    return {};
  }
}

/**
 * The answer to `query` (e.g. "policy linux-image-6.12.117+deb12-amd64") under `apt`: the stored
 * one when nothing apt or dpkg reads has changed since it was asked, else `ask()`'s, stored.
 */
export async function cachedAptAnswer<T extends AptAnswer>(
  apt: AptInputs,
  query: string,
  ask: () => Promise<T>,
): Promise<T> {
  const file = answerFile(apt);
  const before = aptInputsFingerprint(apt);
  const stored = readAnswers(file, before);
  if (Object.hasOwn(stored, query)) return stored[query] as T;
  const answer = await ask();
  // The inputs changed while apt ran: the answer may be of either state, keep none.
  if (aptInputsFingerprint(apt) !== before) return answer;
  const current = readAnswers(file, before);
  const data: AnswerFile = { inputs: before, answers: { ...current, [query]: answer } };
  writeFileAtomic(file, `${JSON.stringify(data)}\n`);
  return answer;
}
