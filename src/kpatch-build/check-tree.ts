/**
 * Before building anything: the target kernel's config must have what live patching needs,
 * and this machine's compiler must be the one that built the target (a different compiler
 * makes different code, and the differ would compare apples with oranges).
 */
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
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

/** Throws TREE_CONFIG or TREE_COMPILER with what to fix. */
export async function checkTree(configPath: string): Promise<void> {
  const config = readConfig(configPath);
  const problems = configProblems(config);
  if (problems.length) {
    throw new KpatchError(
      "TREE_CONFIG",
      `Cannot live patch this kernel: its config lacks what livepatch needs:\n${problems.map((p) => `  ${p.option}: ${p.fix}`).join("\n")}`,
      { file: configPath },
    );
  }
  await kernelCompiler(config, configPath);
}

/** The compiler named by CONFIG_CC_VERSION_TEXT, checked to be on this machine, same version. */
export async function kernelCompiler(config: KernelConfig, configPath: string): Promise<string> {
  const text = config.get("CONFIG_CC_VERSION_TEXT")?.replace(/^"|"$/g, "") ?? "";
  if (!text) return "gcc"; // a config older than 5.8 does not say
  const cc = text.split(" ")[0] ?? "";
  if (!/^[\w.+-]*gcc[\w.+-]*$/.test(cc)) {
    throw new KpatchError(
      "TREE_COMPILER",
      `Cannot tell which compiler built this kernel: CONFIG_CC_VERSION_TEXT is '${text}'`,
      { file: configPath },
    );
  }
  const r = await exec(cc, ["--version"]).catch(() => undefined);
  const here = r?.code === 0 ? r.stdout.split("\n")[0]?.trim() : undefined;
  if (here !== text) {
    throw new KpatchError(
      "TREE_COMPILER",
      `Cannot build for this kernel here: it was built with '${text}', ${here ? `this machine's ${cc} is '${here}'` : `this machine has no ${cc} (Debian: apt-get install gcc-12)`}`,
      { file: configPath },
    );
  }
  return cc;
}
