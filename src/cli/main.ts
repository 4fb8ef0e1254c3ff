/**
 * Shared front-end plumbing: the one mapping from errors to exit statuses (exitStatus, which
 * every command uses) and runCli, which prints an error that ends a command: a KpatchError as
 * `file: error: where: message [CODE]`, a UsageError with a pointer to --help, anything else as
 * a bug with its stack (always, since a user should report it).
 */
import { REFUSAL_CODES } from "../diff/diff-error.js";
import type { ErrorCode } from "../util/error-codes.js";
import { isKpatchError } from "../util/errors.js";

/** Exit codes shared by every command. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  /** kpatch-build, diff-object: the change cannot be applied live (the differ refused it). */
  refused: 2,
  /** kpatch-build: nothing to patch; kpatch: a transition stalled and was backed out. */
  nothing: 3,
  /**
   * kpatch-build: the run-pre check found the original build is not the target kernel's code;
   * kpatch load: the module's functions are not where, or not the code, it was built against.
   */
  runPre: 4,
  interrupted: 130,
} as const;

export class UsageError extends Error {}

/** The codes whose exit status is not 1; every other KpatchError exits 1. */
const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  NO_CHANGES: EXIT.nothing,
  KPATCH_TRANSITION_STALLED: EXIT.nothing,
  INTERRUPTED: EXIT.interrupted,
  RUNPRE_MISMATCH: EXIT.runPre,
  KPATCH_RUNPRE_MISMATCH: EXIT.runPre,
};

/** The one mapping from an error to an exit status, for every command. */
export function exitStatus(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  if (!isKpatchError(e)) return EXIT.error;
  if (REFUSAL_CODES.has(e.code)) return EXIT.refused;
  return EXIT_BY_CODE[e.code] ?? EXIT.error;
}

export async function runCli(prog: string, main: (argv: string[]) => Promise<number>): Promise<void> {
  const argv = process.argv.slice(2);
  const debug = argv.includes("--debug") || argv.includes("-d") || process.env["KPATCH_DEBUG"] === "1";
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${prog}: ${e.message}\nTry '${prog} --help' for more information.\n`);
      process.exitCode = exitStatus(e);
      return;
    }
    if (isKpatchError(e)) {
      process.stderr.write(`${prog}: ${e.format()}\n`);
      if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
      process.exitCode = exitStatus(e);
      return;
    }
    process.stderr.write(`${prog}: internal error (a bug, please report it):\n${(e as Error)?.stack ?? e}\n`);
    process.exitCode = exitStatus(e);
  }
}
