/** The run-pre report as text: one line of totals, then each mismatch with both instructions and the likely causes. */
import type { PaddingOnly } from "./compare-code.js";
import { type FunctionResult, likelyCauses, type RunPreReport } from "./run-pre-check.js";

function where(f: FunctionResult): string {
  return `${f.object}: ${f.function}${f.sympos ? `,${f.sympos}` : ""} (${f.target}${f.address ? ` at ${f.address}` : ""})`;
}

export function formatRunPreSummary(r: RunPreReport): string {
  const parts = [
    `${r.matched} matched`,
    `${r.allowed} with allowed differences`,
    `${r.mismatched} mismatched`,
  ];
  if (r.overridden) parts.push(`${r.overridden} weak and overridden`);
  const padded = r.functions.filter((f) => f.padding).length;
  if (padded) parts.push(`${padded} of the matches only modulo alignment NOPs`);
  return `${r.functions.length} functions checked against ${Object.values(r.sources).join(", ")}: ${parts.join(", ")}`;
}

const branchCount = (n: number) => `${n} branch${n === 1 ? "" : "es"}`;

/** "equal but for N bytes of alignment NOPs", with the branches whose displacement or encoding that changed. */
function paddingText(p: PaddingOnly): string {
  const notes = [
    ...(p.branches ? [`${branchCount(p.branches)} displaced across them`] : []),
    ...(p.relaxed ? [`${branchCount(p.relaxed)} relaxed`] : []),
  ];
  return `equal but for ${p.bytes} bytes of alignment NOPs${notes.length ? ` (${notes.join(", ")})` : ""}`;
}

/** One line for each function that matched only modulo alignment NOPs (none when every match was exact). */
export function paddingLines(r: RunPreReport): string[] {
  return r.functions.flatMap((f) => (f.padding ? [`${where(f)}: ${paddingText(f.padding)}`] : []));
}

export function formatRunPre(r: RunPreReport, options: { allowed?: boolean } = {}): string {
  const lines = [`run-pre check: ${formatRunPreSummary(r)}`];
  for (const f of r.functions) {
    if (f.status === "mismatch" && f.mismatch) {
      const m = f.mismatch;
      lines.push(`  MISMATCH ${where(f)}, ${f.role}: ${m.reason}`);
      lines.push(`    at +0x${m.offset.toString(16)}: original build: ${m.ours}`);
      lines.push(`    ${" ".repeat(m.offset.toString(16).length + 6)}target kernel:  ${m.theirs}`);
    }
    if (f.padding) lines.push(`  padding only: ${where(f)}: ${paddingText(f.padding)}`);
    if (options.allowed) {
      for (const a of f.allowed) {
        lines.push(
          `  allowed ${where(f)} +0x${a.offset.toString(16)}: ${a.kind} (${a.evidence}): ${a.ours} -> ${a.theirs}`,
        );
      }
    }
  }
  if (r.mismatched) {
    lines.push("  likely causes, most likely first:");
    for (const [i, c] of likelyCauses(r).entries()) lines.push(`    ${i + 1}. ${c}`);
  }
  return lines.join("\n");
}
