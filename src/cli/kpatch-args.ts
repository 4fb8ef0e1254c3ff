/**
 * The kpatch command's argument handling shared by its verbs: strict options with -h and -d,
 * and the checks of what reaches paths (a kernel release, a patch name) as usage errors.
 */
import { badKernelReleaseReason, runningRelease } from "../kernel/kernel-paths.js";
import { badModuleNameReason, moduleNameOf } from "../util/module-name.js";
import { parseCommandLine } from "./args.js";
import { UsageError } from "./main.js";

const COMMON = {
  help: { type: "boolean", short: "h" },
  debug: { type: "boolean", short: "d" },
} as const;

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

export function parse<T extends OptionSpec>(verb: string, args: string[], options: T) {
  return parseCommandLine(args, { ...COMMON, ...options }, verb);
}

/** -k KVER, checked (it names a directory), or the running kernel's release. */
export function kernelOption(verb: string, values: { "kernel-version"?: string | undefined }): string {
  const k = values["kernel-version"];
  if (k === undefined) return runningRelease();
  const why = badKernelReleaseReason(k);
  if (why)
    throw new UsageError(`${verb}: -k '${JSON.stringify(k).slice(1, -1)}' is not a kernel release: ${why}`);
  return k;
}

/** A patch name given on the command line ('-' read as '_'), checked: it reaches paths. */
export function patchNameArg(verb: string, arg: string): string {
  const name = moduleNameOf(arg);
  const why = badModuleNameReason(name);
  if (why) throw new UsageError(`${verb}: '${JSON.stringify(arg).slice(1, -1)}' is not a patch name: ${why}`);
  return name;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
