/**
 * `kpatch-build triage --kernel-release KVER --to VERSION`: which fixes of a Debian stable update
 * can go live on the packaged kernel KVER. Both linux-source trees come from Debian's packages
 * (the older one is KVER's own, prepared as for any build); every changed .c file is built alone
 * for KVER and the table says what became of it. Results are cached per fix: run it again to go
 * on after a stop.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { checkPackageVersion, fetchDebianPackage } from "../debian/debian-package.js";
import { parseRelease } from "../debian/kernel-release.js";
import { unpackKernelSource } from "../debian/kernel-source.js";
import { distroKernelTree } from "../kpatch-build/distro/distro-target.js";
import { type TriageFix, triageUpdate } from "../kpatch-build/triage/triage.js";
import { type UpdateChanges, updateChanges } from "../kpatch-build/triage/update-diff.js";
import { cachePath } from "../util/cache-dir.js";
import { KpatchError } from "../util/errors.js";
import { formatDuration, Progress } from "../util/progress.js";
import { parseCommandLine } from "./args.js";
import { EXIT, UsageError } from "./main.js";

const USAGE = `Usage: kpatch-build triage --kernel-release KVER --to VERSION [options]

Which fixes of a Debian stable update can be applied live on the Debian kernel
KVER? The update is the difference between KVER's linux-source package and
linux-source at VERSION (a newer package version, e.g. 6.12.118-1~deb12u1).
Every changed .c file is one fix, built alone for KVER (a fix that does not
compile alone is tried again with the changed headers it includes). Fixes are
never merged: each built fix is its own module, for a person to review and pick.

Options:
  --kernel-release KVER  the Debian kernel the fixes are for (uname -r style)
  --to VERSION           the linux-source-<series> version of the update
  --only PATH            only fixes whose file starts with PATH (repeatable)
  -o, --output DIR       where the modules go (default: ./triage-KVER-VERSION)
  -j, --jobs N           parallel make jobs (default: number of CPUs)
      --fresh            rebuild every fix (default: reuse each fix's cached result)
      --json             print the results as JSON
  -h, --help             this text

Each fix ends as one of:
  built        a module was built (functions listed): it can go live
  refused      kpatch-build refused it: the code and reason say why (exit 2
               of kpatch-build: it cannot be applied live; 4: run-pre)
  nothing      it changes no function of this kernel (exit 3)
  not-built    kbuild's index of this config proves no object is built from it
  no-compile   it does not compile for this kernel, alone or with its headers
  error        anything else, with its code and message

Exit status: 0 the triage ran (whatever the fixes' outcomes), 1 an error, 2 usage.
`;

/** What the results depend on besides the fix: the tool's own code (a changed differ re-triages). */
function toolVersion(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const hash = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".js")) hash.update(name).update(readFileSync(path));
    }
  };
  walk(root);
  return hash.digest("hex").slice(0, 16);
}

function detail(f: TriageFix): string {
  if (f.outcome === "built") {
    const fns = (f.functions ?? []).map((x) => (x.target === "vmlinux" ? x.name : `${x.target}:${x.name}`));
    return `${fns.length} function${fns.length === 1 ? "" : "s"}: ${fns.join(" ")}`;
  }
  return `${f.code ?? ""}: ${f.message ?? ""}`;
}

export function formatTriage(fixes: readonly TriageFix[], changes: UpdateChanges): string {
  const width = Math.min(60, Math.max(4, ...fixes.map((f) => f.file.length)));
  const lines = fixes.map((f) => {
    const headers = f.headers.length ? ` (with ${f.headers.join(" ")})` : "";
    return `${f.file.padEnd(width)}  ${f.outcome.padEnd(10)}  ${detail(f)}${headers}`;
  });
  const count = (o: TriageFix["outcome"]) => fixes.filter((f) => f.outcome === o).length;
  lines.push(
    "",
    `${fixes.length} fixes: ${count("built")} built, ${count("refused")} refused, ${count("nothing")} nothing to patch, ${count("not-built")} not built by this config, ${count("no-compile")} do not compile, ${count("error")} errors`,
    `the update also changes ${changes.headers.length} headers, ${changes.other.length} other files; adds ${changes.added.length}, removes ${changes.removed.length}`,
  );
  return `${lines.join("\n")}\n`;
}

export async function triageMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      "kernel-release": { type: "string" },
      to: { type: "string" },
      only: { type: "string", multiple: true },
      output: { type: "string", short: "o" },
      jobs: { type: "string", short: "j" },
      fresh: { type: "boolean" },
      json: { type: "boolean" },
      debug: { type: "boolean", short: "d" },
      help: { type: "boolean", short: "h" },
    },
    "triage",
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (positionals.length) throw new UsageError(`triage: unexpected argument '${positionals[0]}'`);
  const kernelRelease = values["kernel-release"];
  if (!kernelRelease) throw new UsageError("triage: --kernel-release KVER is required");
  if (!values.to) throw new UsageError("triage: --to VERSION is required");
  const to = checkPackageVersion(values.to);
  const jobs = values.jobs ? Number(values.jobs) : cpus().length;
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`triage: bad --jobs '${values.jobs}'`);
  const release = parseRelease(kernelRelease);
  const progress = new Progress();
  const started = performance.now();
  const tree = await distroKernelTree({ kernelRelease: release.kernelRelease, jobs, progress });
  const source = `linux-source-${release.series}`;
  progress.begin("update", `${source}=${to}`);
  const pkg = await fetchDebianPackage(source, to);
  progress.end();
  const newDir = await unpackKernelSource({
    series: release.series,
    version: to,
    tarball: join(pkg.root, "usr", "src", `${source}.tar.xz`),
    progress,
  });
  if (resolve(newDir) === resolve(tree.srcDir)) {
    throw new KpatchError(
      "TRIAGE_SOURCE",
      `Cannot triage: ${to} is ${release.kernelRelease}'s own source version`,
    );
  }
  const pairDir = cachePath("triage", tree.cacheKey, to);
  progress.begin("compare", `${tree.srcDir} -> ${newDir}`);
  const changes = await updateChanges(tree.srcDir, newDir, join(pairDir, "changes.json"));
  progress.end(`${changes.sources.length} .c files changed, ${changes.headers.length} headers`);
  const fixes = await triageUpdate({
    tree,
    oldDir: tree.srcDir,
    newDir,
    changes,
    only: values.only ?? [],
    outDir: resolve(values.output ?? `triage-${release.kernelRelease}-${to}`),
    cacheDir: join(pairDir, "fixes"),
    toolVersion: toolVersion(),
    jobs,
    progress,
    ...(values.fresh ? { fresh: true } : {}),
  });
  if (values.json)
    process.stdout.write(
      `${JSON.stringify({ kernelRelease: release.kernelRelease, to, changes, fixes }, null, 2)}\n`,
    );
  else process.stdout.write(formatTriage(fixes, changes));
  progress.note(`triage of ${fixes.length} fixes in ${formatDuration(performance.now() - started)}`);
  return EXIT.ok;
}
