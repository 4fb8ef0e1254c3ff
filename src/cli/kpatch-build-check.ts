/**
 * kpatch-build --check-only's front end: the check itself is src/kpatch-build/check-only.ts;
 * this prints its report (text, or --json) and says the exit status: 0 when everything
 * matches, 4 on a mismatch (the report names each).
 */
import { checkOnly, isSourceFile } from "../kpatch-build/check-only.js";
import type { KernelTree } from "../kpatch-build/kernel-tree.js";
import { RunPreError, type RunPreReport } from "../run-pre/run-pre-check.js";
import { formatRunPre } from "../run-pre/run-pre-format.js";
import type { Progress } from "../util/progress.js";
import { EXIT, UsageError } from "./main.js";

export async function checkOnlyCommand(options: {
  tree: KernelTree;
  inputs: string[];
  json: boolean;
  jobs: number;
  progress: Progress;
  signal: AbortSignal;
}): Promise<number> {
  const { inputs, json, ...check } = options;
  const files = inputs.filter(isSourceFile);
  if (files.length && files.length !== inputs.length)
    throw new UsageError("give either patches or source files");
  let report: RunPreReport;
  try {
    report = await checkOnly({ ...check, inputs });
  } catch (e) {
    if (!(e instanceof RunPreError) || !json) throw e;
    report = e.report;
  }
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${formatRunPre(report, { allowed: true })}\n`);
  return report.mismatched ? EXIT.runPre : EXIT.ok;
}
