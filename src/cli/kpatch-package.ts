/**
 * kpatch package: a built live patch module as a Debian package (src/debian/patch-package.ts),
 * for apt to deliver to every machine running that kernel.
 */
import { isPackageVersion } from "../debian/debian-package.js";
import { buildPatchPackage } from "../debian/patch-package.js";
import { badKernelReleaseReason } from "../kernel/kernel-paths.js";
import { parse } from "./kpatch-args.js";
import { EXIT, UsageError } from "./main.js";

export async function cmdPackage(args: string[]): Promise<number> {
  const { values, positionals } = parse("package", args, {
    "kernel-version": { type: "string", short: "k" },
    "package-version": { type: "string", short: "V" },
    "image-version": { type: "string" },
    maintainer: { type: "string" },
    output: { type: "string", short: "o" },
  });
  if (positionals.length !== 1) throw new UsageError("package: give one module file");
  const k = values["kernel-version"];
  const why = k === undefined ? undefined : badKernelReleaseReason(k);
  if (why)
    throw new UsageError(`package: -k '${JSON.stringify(k).slice(1, -1)}' is not a kernel release: ${why}`);
  const iv = values["image-version"];
  if (iv !== undefined && !isPackageVersion(iv))
    throw new UsageError(
      `package: --image-version '${JSON.stringify(iv).slice(1, -1)}' is not a Debian version (e.g. 6.12.117-1~deb12u1)`,
    );
  const p = await buildPatchPackage({
    module: positionals[0]!,
    kernelRelease: k,
    version: values["package-version"],
    imageVersion: values["image-version"],
    maintainer: values.maintainer,
    outDir: values.output ?? ".",
  });
  process.stdout.write(
    `${p.deb}: ${p.name} ${p.version} (module ${p.patch} for kernel ${p.kernelRelease})\n`,
  );
  return EXIT.ok;
}
