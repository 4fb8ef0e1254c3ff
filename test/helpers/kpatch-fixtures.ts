/**
 * What the kpatch command's lab tests share: the lab, the kernel's sample modules, our C test
 * modules (test/fixtures/modules, built out of tree against the lab kernel, cached by their
 * sources), a copy of a module with another kernel's vermagic, persistent disk images, and the
 * kpatch CLI inside the guest.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { readElf } from "../../src/elf/index.js";
import {
  type GuestCommandResult,
  type GuestOptions,
  type GuestResult,
  runGuest,
} from "../../src/lab/guest.js";
import { kpatchInGuest } from "../../src/lab/guest-node.js";
import { DEFAULT_SERIES } from "../../src/lab/paths.js";
import { requireLab } from "../../src/lab/setup.js";
import { execCheck } from "../../src/util/exec.js";
import { fixtureModules, type TestModule } from "./fixture-modules.js";

export const lab = requireLab(DEFAULT_SERIES);

export { TEST_MODULES, type TestModule } from "./fixture-modules.js";

export function sampleModule(dir: "livepatch" | "kobject", name: string): string {
  return join(lab.buildDir, "samples", dir, `${name}.ko`);
}

/** Builds test/fixtures/modules against the lab kernel once per source change; their paths. */
export function testModules(): Promise<Record<TestModule, string>> {
  return fixtureModules({ key: lab.key, kbuildDir: lab.buildDir });
}

/**
 * A copy of a module whose .modinfo vermagic names another kernel release of the same length
 * (the last digit changed), so nothing else in the file moves.
 */
export function withOtherVermagic(src: string, dest: string): { release: string } {
  const bytes = new Uint8Array(readFileSync(src));
  const sec = readElf(bytes, src).findSection(".modinfo");
  if (!sec) throw new Error(`${src} has no .modinfo`);
  const text = new TextDecoder("latin1").decode(sec.data);
  const at = text.indexOf("vermagic=");
  const release = text.slice(at + 9).split(" ")[0]!;
  const last = Number(release.at(-1));
  const other = `${release.slice(0, -1)}${(last + 1) % 10}`;
  const base = sec.data.byteOffset - bytes.byteOffset + at + 9;
  bytes.set(new TextEncoder().encode(other), base);
  writeFileSync(dest, bytes);
  return { release: other };
}

/**
 * A copy of the kernel's livepatch-sample whose klp_func (its `funcs` array: old_name, new_func,
 * old_sympos at offset 16) asks for cmdline_proc_show at `sympos`: a module the running kernel's
 * symbols do not fit.
 */
export function withSympos(src: string, dest: string, sympos: number): void {
  const bytes = new Uint8Array(readFileSync(src));
  const funcs = readElf(bytes, src).symbols.find((s) => s.name === "funcs" && s.section);
  if (!funcs?.section) throw new Error(`${src} has no funcs array`);
  const at = funcs.section.data.byteOffset - bytes.byteOffset + Number(funcs.value) + 16;
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(at, BigInt(sympos), true);
  writeFileSync(dest, bytes);
}

/** A raw ext2 image made from a directory tree of files (path → contents). */
export async function diskImage(files: Record<string, string | Uint8Array>, sizeMb = 16): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "kpatch-disk-"));
  const root = join(dir, "root");
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), data, { mode: 0o755 });
  }
  mkdirSync(join(root, "var", "lib", "kpatch"), { recursive: true });
  const img = join(dir, "disk.img");
  await execCheck("mke2fs", ["-q", "-t", "ext2", "-d", root, img, `${sizeMb}M`], { what: "mke2fs" });
  return img;
}

export interface Step {
  name: string;
  command: string;
}

/** Boots the lab with the kpatch CLI installed as /usr/sbin/kpatch and runs named steps. */
export async function runKpatchSteps(
  steps: readonly Step[],
  options: Omit<GuestOptions, "lab" | "commands" | "shareHost"> = {},
): Promise<{ result: GuestResult; step: (name: string) => GuestCommandResult }> {
  const k = await kpatchInGuest(lab);
  const setup = `${k.setup} >/dev/null && mkdir -p /etc && echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> /etc/passwd && echo 'nogroup:x:65534:' >> /etc/group`;
  const result = await runGuest({
    lab,
    shareHost: true,
    timeoutMs: 600_000,
    ...options,
    files: [k.file, ...(options.files ?? [])],
    commands: [setup, ...steps.map((s) => s.command)],
  });
  const setupResult = result.commands[0]!;
  if (setupResult.exitCode !== 0) throw new Error(`kpatch setup in the guest failed: ${setupResult.output}`);
  return {
    result,
    step: (name) => {
      const i = steps.findIndex((s) => s.name === name);
      if (i < 0) throw new Error(`no step ${name}`);
      return result.commands[i + 1]!;
    },
  };
}

/** "run as nobody": busybox su, no password needed from root. */
export function asNobody(command: string): string {
  return `su -s /bin/sh nobody -c '${command.replace(/'/g, `'\\''`)}'`;
}
