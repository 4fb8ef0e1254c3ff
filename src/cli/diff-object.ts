/**
 * `kpatch-build diff-object ORIG.o PATCHED.o -o OUT.o [options]`: the object differ as a command.
 * Exit 0: changes emitted; 3: no change; 2: the change cannot be applied live (reason printed);
 * 1: any other error.
 */
import { existsSync, rmSync } from "node:fs";
import {
  type DiffOptions,
  diffObjects,
  ExportTable,
  entrySizesFromEnv,
  formatReport,
  parseEntrySizes,
  TargetSymbols,
} from "../diff/index.js";
import { readElf } from "../elf/index.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { isKpatchError } from "../util/errors.js";
import { checkOutputFile, readUserFile } from "../util/user-file.js";
import { parseCommandLine } from "./args.js";
import { exitStatus, UsageError } from "./main.js";

export const DIFF_EXIT = { changed: 0, error: 1, unchanged: 3 } as const;

const USAGE = `Usage: kpatch-build diff-object ORIG.o PATCHED.o -o OUT.o [options]

Compare an object built before a source patch with the same object built after it (both with
-ffunction-sections -fdata-sections) and write the changed and new functions, with what they
need, to OUT.o.

Options:
  -o, --output OUT.o        where to write the object (required)
      --symbols FILE        the target's symbols: vmlinux, a module .ko, any ELF, or System.map
      --target NAME         the object patched: vmlinux (default) or a module name
      --exports FILE        Module.symvers: exported symbols are referred to by name
      --json FILE           write the report as JSON ("-" for standard output)
      --entry-sizes LIST    special-section entry sizes, e.g. bug=12,ex=12,alt=14,jump=16,orc=6
      --kernel DIR          measure the entry sizes from this kernel build tree (cached)
      --werror              treat warnings as errors
  -q, --quiet               print nothing but errors
  -h, --help                show this text

Directives of kpatch-macros.h in PATCHED.o are honoured: KPATCH_*_CALLBACK (the callback and
its section go into OUT.o, listed as callbacks), KPATCH_IGNORE_FUNCTION and KPATCH_IGNORE_SECTION
(changes listed as ignored), KPATCH_FORCE_UNSAFE (a warning says what it overrode).

Exit status: 0 changes emitted, 3 no change, 2 cannot be applied live, 1 other error.
`;

export async function diffObjectMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      output: { type: "string", short: "o" },
      symbols: { type: "string" },
      target: { type: "string" },
      exports: { type: "string" },
      json: { type: "string" },
      "entry-sizes": { type: "string" },
      kernel: { type: "string" },
      werror: { type: "boolean" },
      quiet: { type: "boolean", short: "q" },
      debug: { type: "boolean", short: "d" },
      help: { type: "boolean", short: "h" },
    },
    "diff-object",
  );
  if (values["help"]) {
    process.stdout.write(USAGE);
    return DIFF_EXIT.changed;
  }
  if (positionals.length !== 2) throw new UsageError("diff-object needs ORIG.o and PATCHED.o");
  const out = values["output"] as string | undefined;
  if (!out) throw new UsageError("diff-object needs -o OUT.o");
  const [origPath, patchedPath] = positionals as [string, string];
  const json = values["json"] as string | undefined;
  const quiet = values["quiet"] === true;
  // Where the results go must exist before any work (an error report goes there too).
  checkOutputFile(out, "OUTPUT_DIR");
  if (json && json !== "-") checkOutputFile(json, "OUTPUT_DIR");

  try {
    const options: DiffOptions = { target: (values["target"] as string | undefined) ?? "vmlinux" };
    const entrySizes = entrySizesFromEnv();
    if (values["kernel"]) {
      // Loaded only here: probing compiles against the kernel tree (the build pipeline's modules).
      const { probeEntrySizes } = await import("../kpatch-build/entry-size-probe.js");
      Object.assign(entrySizes, await probeEntrySizes(values["kernel"] as string));
    }
    if (values["entry-sizes"]) Object.assign(entrySizes, parseEntrySizes(values["entry-sizes"] as string));
    options.entrySizes = entrySizes;
    if (values["symbols"]) {
      const path = values["symbols"] as string;
      options.symbols = TargetSymbols.load(readUserFile(path, "INPUT_FILE"), path);
    }
    if (values["exports"]) {
      const path = values["exports"] as string;
      options.exports = ExportTable.parse(readUserFile(path, "INPUT_FILE").toString("utf8"), path);
    }
    const orig = readElf(readUserFile(origPath, "INPUT_FILE"), origPath);
    const patched = readElf(readUserFile(patchedPath, "INPUT_FILE"), patchedPath);
    const result = diffObjects(orig, patched, options);
    if (!quiet) process.stdout.write(formatReport(result.report));
    if (json) writeJson(json, { status: result.changed ? "changed" : "unchanged", ...result.report });
    if (values["werror"] && result.report.warnings.length > 0) {
      process.stderr.write(
        `kpatch-build: diff-object: ${result.report.warnings.length} warning(s) treated as errors\n`,
      );
      return DIFF_EXIT.error;
    }
    if (!result.changed || !result.output) {
      if (existsSync(out)) rmSync(out);
      if (!quiet) process.stdout.write(`${patchedPath}: no change\n`);
      return DIFF_EXIT.unchanged;
    }
    result.output.path = out;
    const { writeElf } = await import("../elf/index.js");
    writeFileAtomic(out, writeElf(result.output));
    return DIFF_EXIT.changed;
  } catch (e) {
    if (!isKpatchError(e)) throw e;
    process.stderr.write(`kpatch-build: ${e.format()}\n`);
    if (values["debug"] && e.stack) process.stderr.write(`${e.stack}\n`);
    if (json)
      writeJson(json, { status: "error", error: { code: e.code, message: e.message, location: e.location } });
    return exitStatus(e);
  }
}

function writeJson(path: string, value: unknown): void {
  const text = `${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`;
  if (path === "-") process.stdout.write(text);
  else writeFileAtomic(path, text);
}
