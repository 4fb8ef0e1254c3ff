/**
 * Shared front-end plumbing: the only place that maps errors to messages and exit codes.
 * A KpatchError prints as `file: error: where: message [CODE]`; anything else is a bug and
 * prints its stack (always, since a user should report it).
 */
import { isKpatchError } from "../util/errors.js";

/** Exit codes shared by every command. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
} as const;

export class UsageError extends Error {}

export async function runCli(
  prog: string,
  main: (argv: string[]) => Promise<number>,
  options: { errorExit?: (e: unknown) => number | undefined } = {},
): Promise<void> {
  const argv = process.argv.slice(2);
  const debug = argv.includes("--debug") || argv.includes("-d") || process.env["KPATCH_DEBUG"] === "1";
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${prog}: ${e.message}\nTry '${prog} --help' for more information.\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    if (isKpatchError(e)) {
      process.stderr.write(`${prog}: ${e.format()}\n`);
      if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
      process.exitCode = options.errorExit?.(e) ?? EXIT.error;
      return;
    }
    process.stderr.write(`${prog}: internal error (a bug, please report it):\n${(e as Error)?.stack ?? e}\n`);
    process.exitCode = EXIT.error;
  }
}
