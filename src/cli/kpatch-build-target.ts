/**
 * Which kernel kpatch-build builds for, from its options (kpatch's behaviour where it has one):
 * -s: the user's tree; --kernel-release KVER: that Debian kernel; --kernel SERIES: a lab kernel;
 * none of them: the running kernel when it is a Debian packaged kernel, else the 6.12 lab kernel
 * (said in a note, with how to pick another target).
 */
import { badKernelReleaseReason } from "../kernel/kernel-paths.js";
import { type KernelTree, userTree } from "../kpatch-build/kernel-tree.js";
import { labTree } from "../lab/lab-tree.js";
import { DEFAULT_SERIES, KERNEL_SERIES, type KernelSeries } from "../lab/paths.js";
import { requireLab } from "../lab/setup.js";
import { printable } from "../util/printable.js";
import type { Progress } from "../util/progress.js";
import { UsageError } from "./main.js";

export interface TargetOptions {
  sourcedir?: string | undefined;
  "build-dir"?: string | undefined;
  config?: string | undefined;
  vmlinux?: string | undefined;
  kernel?: string | undefined;
  "kernel-release"?: string | undefined;
}

function series(value: string | undefined): KernelSeries {
  const s = value ?? DEFAULT_SERIES;
  if (!(KERNEL_SERIES as readonly string[]).includes(s)) throw new UsageError(`unknown kernel series '${s}'`);
  return s as KernelSeries;
}

export async function chooseTarget(
  values: TargetOptions,
  jobs: number,
  progress: Progress,
): Promise<KernelTree> {
  const given = [
    values.sourcedir && "-s",
    values.kernel && "--kernel",
    values["kernel-release"] && "--kernel-release",
  ];
  const chosen = given.filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(" and ")} name different targets: give one`);
  if (!values.sourcedir && (values.config || values["build-dir"])) {
    throw new UsageError(
      "-b/-c/-v describe a tree given with -s (-v also a Debian kernel's, with --kernel-release)",
    );
  }
  if (values.sourcedir) {
    return userTree({
      sourcedir: values.sourcedir,
      ...(values["build-dir"] ? { buildDir: values["build-dir"] } : {}),
      ...(values.config ? { config: values.config } : {}),
      ...(values.vmlinux ? { vmlinux: values.vmlinux } : {}),
    });
  }
  if (values.kernel) {
    if (values.vmlinux)
      throw new UsageError("-v is for a tree given with -s or a Debian kernel (--kernel-release)");
    return labTree(requireLab(series(values.kernel)));
  }
  let kernelRelease = values["kernel-release"];
  const bad = kernelRelease === undefined ? undefined : badKernelReleaseReason(kernelRelease);
  if (bad)
    throw new UsageError(`--kernel-release '${printable(kernelRelease!)}' is not a kernel release: ${bad}`);
  // Loaded only for a Debian kernel: a lab or -s build does not pay for the Debian modules.
  const { defaultRelease, distroKernelTree } = await import("../kpatch-build/distro/distro-target.js");
  if (!kernelRelease) {
    const running = defaultRelease();
    if ("why" in running) {
      if (values.vmlinux)
        throw new UsageError(
          `-b/-c/-v describe a tree given with -s (-v also a Debian kernel's, with --kernel-release); ${running.why}`,
        );
      progress.note(
        `note: ${running.why}: building for the ${DEFAULT_SERIES} lab kernel (--kernel-release KVER targets a Debian kernel, -s your own tree)`,
      );
      return labTree(requireLab(DEFAULT_SERIES));
    }
    kernelRelease = running.release.kernelRelease;
    progress.note(`target: the running kernel ${kernelRelease}`);
  }
  return distroKernelTree({
    kernelRelease,
    ...(values.vmlinux ? { vmlinux: values.vmlinux } : {}),
    jobs,
    progress,
  });
}
