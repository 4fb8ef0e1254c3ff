/**
 * Before building anything: the target kernel's config must have what live patching needs,
 * and this machine's compiler must be the one that built the target (a different compiler
 * makes different code, and the differ would compare apples with oranges).
 */
import { KpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import { readConfig } from "./kernel-config.js";

export interface TreeProblem {
  option: string;
  fix: string;
}

export function configProblems(config: Map<string, string>): TreeProblem[] {
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
  const built = config.get("CONFIG_CC_VERSION_TEXT")?.replace(/^"|"$/g, "");
  const r = await execCheck("gcc", ["--version"]);
  const here = r.stdout.split("\n")[0]?.trim();
  if (built && here !== built) {
    throw new KpatchError(
      "TREE_COMPILER",
      `Cannot build a patch for this kernel with this compiler: the kernel was built with '${built}', this machine has '${here}'`,
      { file: configPath },
    );
  }
}
