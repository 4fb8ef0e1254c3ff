/**
 * Before building anything: the target kernel's config must have what live patching needs,
 * and this machine's compiler must be the one that built the target (a different compiler
 * makes different code, and the differ would compare apples with oranges).
 */
import { KpatchError } from "../util/errors.js";
import { exec, type Runner } from "../util/exec.js";
import { type KernelConfig, readConfig } from "./kernel-config.js";

export interface TreeProblem {
  option: string;
  fix: string;
}

function configProblems(config: Map<string, string>): TreeProblem[] {
  const problems: TreeProblem[] = [];
  const on = (o: string) => config.get(o) === "y";
  if (!on("CONFIG_LIVEPATCH"))
    problems.push({ option: "CONFIG_LIVEPATCH", fix: "enable CONFIG_LIVEPATCH=y" });
  if (!on("CONFIG_DYNAMIC_FTRACE_WITH_ARGS") && !on("CONFIG_DYNAMIC_FTRACE_WITH_REGS")) {
    problems.push({
      option: "CONFIG_DYNAMIC_FTRACE_WITH_ARGS",
      fix: "enable CONFIG_DYNAMIC_FTRACE_WITH_ARGS (or _WITH_REGS): livepatch redirects calls through ftrace",
    });
  }
  if (!on("CONFIG_KALLSYMS_ALL")) {
    problems.push({
      option: "CONFIG_KALLSYMS_ALL",
      fix: "enable CONFIG_KALLSYMS_ALL: livepatch finds data symbols by name",
    });
  }
  if (!on("CONFIG_MODULES")) problems.push({ option: "CONFIG_MODULES", fix: "enable CONFIG_MODULES" });
  return problems;
}

/**
 * Throws TREE_CONFIG or TREE_COMPILER with what to fix. `run` runs the tree's commands (a
 * build root's chroot for a Debian kernel built by another compiler; default: this machine).
 */
export async function checkTree(configPath: string, run: Runner = exec): Promise<void> {
  const config = readConfig(configPath);
  const problems = configProblems(config);
  if (problems.length) {
    throw new KpatchError(
      "TREE_CONFIG",
      `Cannot live patch this kernel: its config lacks what livepatch needs:\n${problems.map((p) => `  ${p.option}: ${p.fix}`).join("\n")}`,
      { file: configPath },
    );
  }
  const compiler = configCompiler(config, configPath);
  const found = await compilerVersion(compiler.cc, run);
  if (found !== compiler.text) throw await compilerMismatch(compiler, found, { configPath });
}

/** The compiler that built a kernel, as its config names it. */
export interface KernelCompiler {
  /** The program: gcc, x86_64-linux-gnu-gcc-14. */
  cc: string;
  /** CONFIG_CC_VERSION_TEXT: its `--version` first line ("" for a config older than 5.8). */
  text: string;
  /** CONFIG_GCC_VERSION: 140200 for gcc 14.2.0 (undefined when the config does not say). */
  version?: number;
}

/** The compiler CONFIG_CC_VERSION_TEXT names; TREE_COMPILER when it is not a gcc. */
export function configCompiler(config: KernelConfig, configPath: string): KernelCompiler {
  const text = config.get("CONFIG_CC_VERSION_TEXT")?.replace(/^"|"$/g, "") ?? "";
  const gccVersion = Number(config.get("CONFIG_GCC_VERSION") ?? "");
  const version = gccVersion > 0 ? { version: gccVersion } : {};
  if (!text) return { cc: "gcc", text, ...version }; // a config older than 5.8 does not say
  const cc = text.split(" ")[0] ?? "";
  if (!/^[\w.+-]*gcc[\w.+-]*$/.test(cc)) {
    throw new KpatchError(
      "TREE_COMPILER",
      `Cannot tell which compiler built this kernel: CONFIG_CC_VERSION_TEXT is '${text}'`,
      { file: configPath },
    );
  }
  return { cc, text, ...version };
}

/** `cc --version`'s first line as `run` finds it, or undefined when there is no such program. */
export async function compilerVersion(cc: string, run: Runner = exec): Promise<string | undefined> {
  const r = await run(cc, ["--version"]).catch(() => undefined);
  return r?.code === 0 ? r.stdout.split("\n")[0]?.trim() : undefined;
}

/**
 * TREE_COMPILER naming both compilers: the kernel's, and the one here (`found`: `cc --version`
 * where the build would run, or this machine's gcc when there is no `cc`). `why` says why no
 * build root stands in (for a Debian kernel).
 */
export async function compilerMismatch(
  compiler: KernelCompiler,
  found: string | undefined,
  options: { configPath: string; where?: string; why?: string },
): Promise<KpatchError> {
  const where = options.where ?? "this machine";
  const here = found
    ? `${where}'s ${compiler.cc} is '${found}'`
    : `${where} has no ${compiler.cc} (its gcc: ${quoted(await compilerVersion("gcc"))})`;
  return new KpatchError(
    "TREE_COMPILER",
    `Cannot build for this kernel here: it was built with '${compiler.text || "an unnamed gcc"}', ${here}${options.why ? `; ${options.why}` : ""}`,
    { file: options.configPath },
  );
}

function quoted(text: string | undefined): string {
  return text ? `'${text}'` : "none";
}
