/**
 * `kpatch-lab demo`: a live patch applied to a running kernel where a person can watch.
 */
import { formatDuration } from "../util/progress.js";
import { runGuest } from "./guest.js";
import type { KernelSeries } from "./paths.js";
import { requireLab } from "./setup.js";
import { checkSmoke, sampleModule, smokeSteps } from "./smoke.js";

export async function runDemo(
  series: KernelSeries,
  out: NodeJS.WritableStream = process.stdout,
): Promise<boolean> {
  const lab = requireLab(series);
  const steps = smokeSteps();
  out.write(`Booting the lab kernel (Linux ${lab.kernelRelease}) under QEMU...\n`);
  const result = await runGuest({ lab, files: [sampleModule(lab)], commands: steps.map((s) => s.command) });
  steps.forEach((s, i) => {
    const r = result.commands[i]!;
    out.write(`\n# ${s.what}\n$ ${s.command.length > 70 ? `${s.command.slice(0, 67)}...` : s.command}\n`);
    out.write(r.output);
    if (r.exitCode !== 0) out.write(`[exit status ${r.exitCode}]\n`);
  });
  const klp = result.kernelLog.split("\n").filter((l) => /livepatch/.test(l));
  out.write(`\n# what the kernel said\n${klp.join("\n")}\n`);
  const failures = checkSmoke(steps, result);
  out.write(`\nguest run: ${formatDuration(result.wallMs)} under ${result.accel}\n`);
  if (failures.length) out.write(`\nFAILED:\n${failures.map((f) => `  ${f}`).join("\n")}\n`);
  else out.write("\nThe running kernel was patched live and rolled back.\n");
  return failures.length === 0;
}
