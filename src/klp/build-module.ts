/**
 * Build the livepatch module: write the differ's objects (each with global aliases of its new
 * functions) and the generated source into a kbuild directory, build it against the target
 * kernel's build tree (the same tree and config that built the running kernel, so vermagic
 * matches), then post-link the .ko and write it out atomically.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { SHT_PROGBITS, STB_GLOBAL, STT_FUNC } from "../elf/constants.js";
import type { ElfFile } from "../elf/elf-file.js";
import { readElf } from "../elf/read-elf.js";
import { writeElf } from "../elf/write-elf.js";
import { RUNPRE_SECTION } from "../run-pre/runpre-record.js";
import { createAtomic, writeFileAtomic } from "../util/atomic-write.js";
import { KpatchError } from "../util/errors.js";
import { buildErrors, exec, type Runner } from "../util/exec.js";
import type { Progress } from "../util/progress.js";
import { takeCallbacks } from "./callbacks.js";
import { CALLBACK_KINDS } from "./format.js";
import { probeShell } from "./kbuild-probes.js";
import { keepModuleCommon, seedModuleCommon } from "./module-common.js";
import { type ModuleSpec, moduleMakefile, moduleSource, type PatchedTarget } from "./module-source.js";
import { convertKlpRelocations, type PostLinkStats } from "./post-link.js";

export interface DiffOutput {
  /** The differ's output object. */
  object: ElfFile;
  target: string;
  /** Changed functions: name in the object, name and sympos of the original in the target. */
  funcs: { name: string; oldName: string; sympos: number }[];
  /** What the patched code does differently besides the change (the differ's report notes). */
  notes?: readonly string[];
}

export interface ModuleBuild {
  ko: string;
  stats: PostLinkStats;
  targets: PatchedTarget[];
}

/** Give each changed function of an output object a unique global alias; returns the targets. */
function addAliases(outputs: readonly DiffOutput[]): PatchedTarget[] {
  const targets = new Map<string, PatchedTarget>();
  outputs.forEach((out, i) => {
    const t = targets.get(out.target) ?? { name: out.target, funcs: [] };
    targets.set(out.target, t);
    const callbacks = takeCallbacks(out.object, `__kpts_${i}_cb`);
    for (const kind of CALLBACK_KINDS) {
      const alias = callbacks[kind];
      if (!alias) continue;
      t.callbacks ??= {};
      if (t.callbacks[kind]) {
        throw new KpatchError("KLP_BAD_CALLBACK", `Cannot have two ${kind} callbacks for ${out.target}`, {
          file: out.object.path,
        });
      }
      t.callbacks[kind] = alias;
    }
    for (const f of out.funcs) {
      const syms = out.object.findSymbols(f.name).filter((s) => s.type === STT_FUNC && s.section);
      const sym = syms[0];
      if (!sym || syms.length > 1) {
        throw new KpatchError(
          "KLP_NO_FUNCTION",
          `Cannot find exactly one definition of ${f.name} in the differ's output`,
          {
            file: out.object.path,
            symbol: f.name,
          },
        );
      }
      const alias = `__kpts_${i}_${f.name.replace(/[^A-Za-z0-9_]/g, "_")}`;
      out.object.addSymbol({
        name: alias,
        type: STT_FUNC,
        bind: STB_GLOBAL,
        section: sym.section!,
        value: sym.value,
        size: sym.size,
      });
      t.funcs.push({ oldName: f.oldName, sympos: f.sympos, alias });
    }
  });
  // vmlinux first, then modules by name: a stable order for the generated source.
  return [...targets.values()].sort((a, b) =>
    a.name === b.name
      ? 0
      : a.name === "vmlinux"
        ? -1
        : b.name === "vmlinux"
          ? 1
          : a.name.localeCompare(b.name),
  );
}

export interface ModuleSigning {
  key: string;
  cert: string;
}

/**
 * Sign `ko` in place with the kernel's own scripts/sign-file and the hash its config names
 * (CONFIG_MODULE_SIG_HASH), as kbuild's modules_sign does.
 */
async function signModule(buildDir: string, sign: ModuleSigning, ko: string, run: Runner): Promise<void> {
  const signFile = join(buildDir, "scripts", "sign-file");
  if (!existsSync(signFile)) {
    throw new KpatchError(
      "SIGN_FAILED",
      `Cannot sign the module: ${signFile} is missing (no CONFIG_MODULE_SIG?)`,
    );
  }
  for (const f of [sign.key, sign.cert]) {
    if (!existsSync(f)) throw new KpatchError("SIGN_FAILED", `Cannot sign the module: no ${f}`, { file: f });
  }
  const hash = /^CONFIG_MODULE_SIG_HASH="(\w+)"$/m.exec(readFileSync(join(buildDir, ".config"), "utf8"))?.[1];
  if (!hash) {
    throw new KpatchError(
      "SIGN_FAILED",
      `Cannot sign the module: ${buildDir}/.config names no CONFIG_MODULE_SIG_HASH`,
    );
  }
  const r = await run(signFile, [hash, sign.key, sign.cert, ko], {
    paths: [dirname(resolve(sign.key)), dirname(resolve(sign.cert)), dirname(resolve(ko))],
  });
  if (r.code !== 0) {
    throw new KpatchError(
      "SIGN_FAILED",
      `Cannot sign the module with ${sign.key}: ${r.stderr.trim() || `exit ${r.code}`}`,
      {
        file: sign.key,
      },
    );
  }
}

export async function buildModule(options: {
  name: string;
  outputs: readonly DiffOutput[];
  kernelBuildDir: string;
  workDir: string;
  outFile: string;
  replace: boolean;
  jobs: number;
  progress: Progress;
  /** Extra make arguments of the kernel's build tree (a Debian kernel's CC and KERNELRELEASE). */
  makeArgs?: readonly string[];
  /** How the kernel tree's commands run (its build root; default: here). */
  run?: Runner;
  /** Sign the module (Secure Boot): the private key and X.509 certificate, as sign-file takes them. */
  sign?: ModuleSigning;
  /** The run-pre record (src/run-pre/runpre-record.ts) the module carries for kpatch load. */
  runPreRecord?: Uint8Array;
}): Promise<ModuleBuild> {
  const { name, outputs, workDir, progress } = options;
  progress.begin("module", `${name}.ko`);
  const dir = join(workDir, "module");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const targets = addAliases(outputs);
  const objects = outputs.map((_, i) => `kpts-diff-${i}.o`);
  outputs.forEach((out, i) => {
    writeFileSync(join(dir, objects[i]!), writeElf(out.object));
    // modpost reads every member object's kbuild .cmd file (for symbol versions).
    writeFileSync(
      join(dir, `.${objects[i]}.cmd`),
      `savedcmd_${objects[i]} := # made by the kpatch-ts differ\n`,
    );
  });
  const notes = [...new Set(outputs.flatMap((o) => o.notes ?? []))];
  const spec: ModuleSpec = { name, targets, replace: options.replace, objects, notes };
  writeFileSync(join(dir, "patch-main.c"), moduleSource(spec));
  writeFileSync(join(dir, "Kbuild"), moduleMakefile(spec));
  const makeArgs = [
    "-C",
    options.kernelBuildDir,
    ...(options.makeArgs ?? []),
    `M=${dir}`,
    `-j${options.jobs}`,
  ];
  const probes = await probeShell({
    makeArgs: options.makeArgs ?? [],
    ...(options.run ? { run: options.run } : {}),
  });
  const seeded = seedModuleCommon(dir, options.kernelBuildDir, options.makeArgs ?? []);
  const r = await (options.run ?? exec)("make", [...makeArgs, ...probes.args, "modules"], {
    env: { ...process.env, KBUILD_MODPOST_WARN: "1", ...probes.env },
  });
  if (r.code !== 0) {
    throw new KpatchError("BUILD_FAILED", `Cannot build the livepatch module:\n${buildErrors(r)}`, {
      file: dir,
    });
  }
  keepModuleCommon(dir, options.kernelBuildDir, options.makeArgs ?? [], seeded);
  const built = join(dir, `${name}.ko`);
  const ko = readElf(readFileSync(built), built);
  const stats = convertKlpRelocations(ko);
  if (options.runPreRecord) {
    // Not SHF_ALLOC: the module loader does not copy it into kernel memory.
    ko.addSection({ name: RUNPRE_SECTION, type: SHT_PROGBITS, data: options.runPreRecord });
  }
  const sign = options.sign;
  if (sign) {
    // Signed last: the signature covers the post-linked bytes.
    await createAtomic(options.outFile, async (tmp) => {
      writeFileSync(tmp, writeElf(ko));
      await signModule(options.kernelBuildDir, sign, tmp, options.run ?? exec);
    });
  } else writeFileAtomic(options.outFile, writeElf(ko));
  progress.end(
    `${stats.klpRelocs} klp relocations, ${stats.klpSymbols} klp symbols${options.runPreRecord ? `, ${options.runPreRecord.length}-byte run-pre record` : ""}${sign ? ", signed" : ""}`,
  );
  return { ko: options.outFile, stats, targets };
}
