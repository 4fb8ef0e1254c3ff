/**
 * Command-line parsing shared by every command: node:util's parseArgs, strict, with its
 * complaints (an unknown option, a missing value) turned into a UsageError (exit 2, one line
 * and a hint), never a stack trace.
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { UsageError } from "./main.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `args` against `options`; `what` prefixes the message ("load", "diff-object"). */
export function parseCommandLine<T extends Options>(args: string[], options: T, what?: string) {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>
  >;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (e) {
    // Node adds advice on '--' and on values starting with '-' (on lines of its own for the
    // latter); the usage hint says enough: one line.
    const message = (e as Error).message
      .replace(/\. To specify a positional.*$/s, "")
      .split("\n")
      .filter((l) => !/^To specify/.test(l))
      .join(" ");
    throw new UsageError(what ? `${what}: ${message}` : message);
  }
  refuseEmptyValues(parsed.values, what);
  return parsed;
}

/**
 * An option given an empty value (--kernel-release "") is a mistake, never "use the default":
 * refused naming the option, before anything reads it as absent.
 */
function refuseEmptyValues(values: Record<string, unknown>, what: string | undefined): void {
  for (const [name, value] of Object.entries(values)) {
    if (value === "" || (Array.isArray(value) && value.includes(""))) {
      const message = `--${name} needs a value, not an empty string`;
      throw new UsageError(what ? `${what}: ${message}` : message);
    }
  }
}
