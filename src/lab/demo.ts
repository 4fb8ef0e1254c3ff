/**
 * `kpatch-lab demo`: the main job where a person can watch it. kpatch-build turns a source
 * patch (examples/<series>/proc-cmdline.patch) into a livepatch module; the lab kernel boots
 * under QEMU; the module is loaded into the running kernel, /proc/cmdline changes, the patch
 * is disabled and unloaded, and /proc/cmdline is the original again.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { kpatchBuild } from "../kpatch-build/kpatch-build.js";
import { normalizeModuleName } from "../util/module-name.js";
import { formatDuration, Progress } from "../util/progress.js";
import { runGuest } from "./guest.js";
import { labTree } from "./lab-tree.js";
import type { KernelSeries } from "./paths.js";
import { requireLab } from "./setup.js";
import { waitTransition } from "./smoke.js";

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "examples");

interface Step {
  what: string;
  command: string;
  expect?: (out: string) => boolean;
}

export async function runDemo(
  series: KernelSeries,
  out: NodeJS.WritableStream = process.stdout,
): Promise<boolean> {
  const lab = requireLab(series);
  const patch = join(EXAMPLES, series, "proc-cmdline.patch");
  if (!existsSync(patch)) throw new Error(`no demo patch for ${series}: ${patch}`);
  const work = mkdtempSync(join(tmpdir(), "kpatch-demo-"));
  try {
    out.write(`# The patch (${patch}):\n${readFileSync(patch, "utf8")}\n`);
    out.write("# kpatch-build turns it into a livepatch module\n");
    const built = await kpatchBuild({
      tree: labTree(lab),
      patches: [patch],
      outDir: work,
      replace: true,
      jobs: 2,
      skipCleanup: false,
      progress: new Progress(),
    });
    const mod = normalizeModuleName(built.name);
    for (const t of built.targets) for (const f of t.funcs) out.write(`  replaces ${t.name}:${f.oldName}\n`);
    let original = "";
    const steps: Step[] = [
      {
        what: "the running kernel's /proc/cmdline",
        command: "cat /proc/cmdline",
        expect: (o) => {
          original = o;
          return !o.includes("kpatch-ts=live");
        },
      },
      { what: "load the patch module", command: `insmod ${built.name}.ko` },
      { what: "wait for the patch transition", command: waitTransition(mod) },
      {
        what: "the patch is live",
        command: `cat /sys/kernel/livepatch/${mod}/enabled`,
        expect: (o) => o.trim() === "1",
      },
      {
        what: "/proc/cmdline from the new code",
        command: "cat /proc/cmdline",
        expect: (o) => o.includes("kpatch-ts=live"),
      },
      { what: "disable the patch", command: `echo 0 > /sys/kernel/livepatch/${mod}/enabled` },
      { what: "wait for the unpatch transition", command: waitTransition(mod) },
      { what: "unload the module", command: `rmmod ${mod}` },
      {
        what: "/proc/cmdline is the original again",
        command: "cat /proc/cmdline",
        expect: (o) => o === original,
      },
    ];
    out.write(`\n# Booting the lab kernel (Linux ${lab.kernelRelease}) under QEMU...\n`);
    const result = await runGuest({ lab, files: [built.module], commands: steps.map((s) => s.command) });
    const failures: string[] = [];
    steps.forEach((s, i) => {
      const r = result.commands[i]!;
      out.write(
        `\n# ${s.what}\n$ ${s.command.length > 70 ? `${s.command.slice(0, 67)}...` : s.command}\n${r.output}`,
      );
      if (r.exitCode !== 0) out.write(`[exit status ${r.exitCode}]\n`);
      if (r.exitCode !== 0 || (s.expect && !s.expect(r.output))) failures.push(s.what);
    });
    const klp = result.kernelLog.split("\n").filter((l) => /livepatch/.test(l));
    out.write(`\n# what the kernel said\n${klp.join("\n")}\n`);
    out.write(`\nguest run: ${formatDuration(result.wallMs)} under ${result.accel}\n`);
    if (failures.length) out.write(`\nFAILED: ${failures.join("; ")}\n`);
    else out.write("\nThe running kernel was patched live from a source patch, and rolled back.\n");
    return failures.length === 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
