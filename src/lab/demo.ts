/**
 * `kpatch-lab demo`: the main job where a person can watch it. kpatch-build turns a source
 * patch (examples/<series>/proc-cmdline.patch) into a livepatch module for Debian's stock kernel
 * (--kernel-release, no kernel build; or, with --kernel, for the lab kernel); that kernel boots
 * under QEMU with the kpatch command in it; `kpatch load` patches the running kernel,
 * /proc/cmdline changes, `kpatch list` shows the patch, `kpatch unload` takes it out, and
 * /proc/cmdline is the original again.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { distroKernelTree } from "../kpatch-build/distro/distro-target.js";
import { kpatchBuild } from "../kpatch-build/kpatch-build.js";
import { normalizeModuleName } from "../util/module-name.js";
import { formatDuration, Progress } from "../util/progress.js";
import { isDistroLab, requireDistroLab } from "./distro.js";
import { runGuest } from "./guest.js";
import { kpatchInGuest } from "./guest-node.js";
import { labTree } from "./lab-tree.js";
import type { KernelSeries } from "./paths.js";
import { requireLab } from "./setup.js";

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "examples");
const MARK = "kpatch-ts=live";

interface Step {
  what: string;
  command: string;
  expect?: (out: string) => boolean;
}

export interface DemoTarget {
  series: KernelSeries;
  /** Debian's stock kernel of the series (kpatch-lab setup --distro), else the lab kernel. */
  distro: boolean;
}

export async function runDemo(
  target: DemoTarget,
  out: NodeJS.WritableStream = process.stdout,
): Promise<boolean> {
  const { series } = target;
  const lab = target.distro ? requireDistroLab(series) : requireLab(series);
  const patch = join(EXAMPLES, series, "proc-cmdline.patch");
  if (!existsSync(patch)) throw new Error(`no demo patch for ${series}: ${patch}`);
  const work = mkdtempSync(join(tmpdir(), "kpatch-demo-"));
  try {
    const kind = target.distro
      ? `Debian's stock kernel ${lab.kernelRelease}`
      : `the lab kernel ${lab.kernelRelease}`;
    out.write(`# The patch (${patch}):\n${readFileSync(patch, "utf8")}\n`);
    out.write(
      `# kpatch-build${target.distro ? ` --kernel-release ${lab.kernelRelease}` : ""} turns it into a livepatch module for ${kind}\n`,
    );
    const progress = new Progress();
    const tree = isDistroLab(lab)
      ? await distroKernelTree({ kernelRelease: lab.kernelRelease, jobs: 2, progress })
      : labTree(lab);
    const built = await kpatchBuild({
      tree,
      patches: [patch],
      outDir: work,
      replace: true,
      jobs: 2,
      skipCleanup: false,
      progress,
    });
    const mod = normalizeModuleName(built.name);
    const ko = basename(built.module);
    for (const t of built.targets) for (const f of t.funcs) out.write(`  replaces ${t.name}:${f.oldName}\n`);
    const kpatch = await kpatchInGuest(lab);
    let original = "";
    const steps: Step[] = [
      { what: "the kpatch command in the guest (node from the host, over 9p)", command: kpatch.setup },
      {
        what: "the running kernel and its /proc/cmdline",
        command: "uname -r; cat /proc/cmdline",
        expect: (o) => {
          original = o;
          return o.startsWith(`${lab.kernelRelease}\n`) && !o.includes(MARK);
        },
      },
      { what: "load the patch", command: `kpatch load ${ko}` },
      {
        what: "the patch is live",
        command: "kpatch list",
        expect: (o) => new RegExp(`${mod}.*enabled`).test(o),
      },
      {
        what: "/proc/cmdline from the new code",
        command: "cat /proc/cmdline",
        expect: (o) => o.includes(MARK),
      },
      { what: "unload the patch", command: `kpatch unload ${mod}` },
      { what: "no patch is left", command: "kpatch list", expect: (o) => !o.includes(mod) },
      {
        what: "/proc/cmdline is the original again",
        command: "uname -r; cat /proc/cmdline",
        expect: (o) => o === original,
      },
    ];
    out.write(`\n# Booting ${kind} under QEMU...\n`);
    const result = await runGuest({
      lab,
      shareHost: true,
      timeoutMs: 600_000,
      files: [kpatch.file, built.module],
      commands: steps.map((s) => s.command),
    });
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
    for (const said of [`'${mod}': patching complete`, `'${mod}': unpatching complete`]) {
      if (!klp.some((l) => l.includes(said))) failures.push(`the kernel log says "${said}"`);
    }
    out.write(`\n# what the kernel said\n${klp.join("\n")}\n`);
    out.write(`\nguest run: ${formatDuration(result.wallMs)} under ${result.accel}\n`);
    if (failures.length) out.write(`\nFAILED: ${failures.join("; ")}\n`);
    else out.write("\nThe running kernel was patched live from a source patch, and rolled back.\n");
    return failures.length === 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
