/**
 * Test helpers for src/elf: compile C or assemble into a temp dir, run binutils, and normalise
 * readelf output so a rewritten object can be compared with its original.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
let dir: string | undefined;

/** One temp dir per test process, removed when it exits. */
export function tempDir(): string {
  if (dir === undefined) {
    const made = mkdtempSync(join(tmpdir(), "kpatch-elf-"));
    dir = made;
    process.on("exit", () => rmSync(made, { recursive: true, force: true }));
  }
  return dir;
}

export interface BuiltObject {
  path: string;
  bytes: Uint8Array;
}

/** The kernel's section flags: one function or object per section. */
export const KERNEL_LIKE_FLAGS = [
  "-O2",
  "-ffunction-sections",
  "-fdata-sections",
  "-fno-asynchronous-unwind-tables",
];

/** Compiles C source with gcc -c (kernel-like flags plus `flags`) into <tempdir>/<name>.o. */
export function compileC(name: string, source: string, flags: string[] = []): BuiltObject {
  const src = join(tempDir(), `${name}.c`);
  const path = join(tempDir(), `${name}.o`);
  writeFileSync(src, source);
  execFileSync("gcc", [...KERNEL_LIKE_FLAGS, ...flags, "-c", src, "-o", path], { stdio: "pipe" });
  return { path, bytes: new Uint8Array(readFileSync(path)) };
}

/** Assembles GNU as source into <tempdir>/<name>.o. */
export function assemble(name: string, source: string): BuiltObject {
  const src = join(tempDir(), `${name}.s`);
  const path = join(tempDir(), `${name}.o`);
  writeFileSync(src, `${source}\n`);
  execFileSync("as", [src, "-o", path], { stdio: "pipe" });
  return { path, bytes: new Uint8Array(readFileSync(path)) };
}

/** Links objects into a static executable without libc: <tempdir>/<name>. */
export function linkExecutable(name: string, objects: string[]): BuiltObject {
  const path = join(tempDir(), name);
  execFileSync("gcc", ["-nostdlib", "-static", "-no-pie", ...objects, "-o", path], { stdio: "pipe" });
  return { path, bytes: new Uint8Array(readFileSync(path)) };
}

/** Links objects into a shared library: <tempdir>/<name>. */
export function linkShared(name: string, objects: string[]): BuiltObject {
  const path = join(tempDir(), name);
  execFileSync("gcc", ["-shared", "-nostdlib", ...objects, "-o", path], { stdio: "pipe" });
  return { path, bytes: new Uint8Array(readFileSync(path)) };
}

/** Writes bytes to <tempdir>/<name> and returns the path. */
export function saveBytes(name: string, bytes: Uint8Array): string {
  const path = join(tempDir(), name);
  writeFileSync(path, bytes);
  return path;
}

/** Runs a tool; resolves with stdout, rejects with the tool's stderr in the message. */
export async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 1 << 30, encoding: "utf8" });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr || err.message}`);
  }
}

export function runSync(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { maxBuffer: 1 << 30, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * `readelf -S -s -r -W` with file offsets blanked: the "starting at offset" and "at offset" header
 * lines and the Off column of the section table. Everything else must match exactly.
 */
export function normalizeReadelf(text: string, path: string): string {
  return text
    .split(path)
    .join("FILE")
    .replace(/starting at offset 0x[0-9a-f]+/g, "starting at offset X")
    .replace(/' at offset 0x[0-9a-f]+/g, "' at offset X")
    .replace(/^( {2}\[[ 0-9]+\] .*? [0-9a-f]{16} )[0-9a-f]+ /gm, "$1OFF ");
}

export async function readelf(path: string): Promise<string> {
  return normalizeReadelf(await run("readelf", ["-S", "-s", "-r", "-W", path]), path);
}
