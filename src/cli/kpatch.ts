#!/usr/bin/env node
/**
 * kpatch: manage live patch modules on the running kernel. Same verbs and meanings as
 * kpatch's own kpatch(1), so habits carry over; every verb has --help.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { requireLivepatch, requireRoot, runningRelease } from "../kernel/kernel-paths.js";
import { type LoadedPatch, listPatches, patchInTransition } from "../kernel/livepatch-sysfs.js";
import { isLivepatchModule, loadedModules } from "../kernel/modules.js";
import {
  type LoadOptions,
  loadPatch,
  type PatchOpOptions,
  type PatchOpResult,
  TransitionStalledError,
  unloadPatch,
} from "../kernel/patch-ops.js";
import { blockingTasks, describeTask, signalTasks } from "../kernel/tasks.js";
import {
  bootDisabled,
  confirmBoot,
  enableBootService,
  type LoadAllReport,
  loadInstalled,
  readCmdline,
} from "../manage/boot.js";
import { unblock } from "../manage/crash-guard.js";
import {
  allInstalledPatches,
  findInstalled,
  installedPatches,
  installPatch,
  oddEntries,
  uninstallPatch,
} from "../manage/install.js";
import { RunPreLoadError, verifyBeforeLoad } from "../run-pre/live-check.js";
import { isKpatchError, type KpatchError } from "../util/errors.js";
import { escapeControl } from "../util/printable.js";
import { kernelOption, parse, patchNameArg, printJson } from "./kpatch-args.js";
import { describeInstalled, describeLoaded, describeResult } from "./kpatch-format.js";
import { HELP, USAGE } from "./kpatch-help.js";
import { cmdInfo } from "./kpatch-info.js";
import { cmdPackage } from "./kpatch-package.js";
import { EXIT, exitStatus, runCli, UsageError } from "./main.js";

const TRANSITION = {
  timeout: { type: "string", short: "t" },
  "signal-after": { type: "string" },
  json: { type: "boolean" },
} as const;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h") {
    (cmd ? process.stdout : process.stderr).write(USAGE);
    return cmd ? EXIT.ok : EXIT.usage;
  }
  if (cmd === "help") {
    const topic = rest[0];
    if (topic && !HELP[topic]) throw new UsageError(`unknown command '${topic}'`);
    process.stdout.write(topic ? HELP[topic]! : USAGE);
    return EXIT.ok;
  }
  if (cmd === "--version") return version();
  const verb = VERBS[cmd];
  if (!verb) throw new UsageError(`unknown command '${cmd}'`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(HELP[cmd]!);
    return EXIT.ok;
  }
  return verb(rest);
}

const VERBS: Record<string, (args: string[]) => Promise<number>> = {
  load: cmdLoad,
  unload: cmdUnload,
  list: cmdList,
  info: cmdInfo,
  install: cmdInstall,
  uninstall: cmdUninstall,
  signal: cmdSignal,
  boot: cmdBoot,
  unblock: cmdUnblock,
  package: cmdPackage,
  version: async () => version(),
};

function seconds(verb: string, name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`${verb}: --${name} needs a number of seconds, not '${value}'`);
  return n * 1000;
}

function transitionOptions(
  verb: string,
  values: Record<string, unknown>,
  log: (m: string) => void,
): PatchOpOptions {
  const timeoutMs = seconds(verb, "timeout", values["timeout"] as string | undefined);
  const signalAfterMs = seconds(verb, "signal-after", values["signal-after"] as string | undefined);
  return {
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(signalAfterMs !== undefined ? { signalAfterMs } : {}),
    log,
  };
}

const note = (m: string) => process.stderr.write(`kpatch: ${m}\n`);

/** Load options: the transition's, and the run-pre check before insmod (--skip-run-pre: its override). */
function loadOptions(verb: string, values: Record<string, unknown>, log: (m: string) => void): LoadOptions {
  const skipRunPre = values["skip-run-pre"] === true;
  return {
    ...transitionOptions(verb, values, log),
    verify: (elf, paths) => verifyBeforeLoad(elf, paths.proc, { log, ...(skipRunPre ? { skipRunPre } : {}) }),
  };
}

/** The JSON form of an error for --json callers (the message also goes to stderr). */
function errorJson(e: KpatchError): Record<string, unknown> {
  return {
    code: e.code,
    message: e.message,
    ...(e instanceof TransitionStalledError ? { patch: e.patch, blockers: e.blockers } : {}),
    ...(e instanceof RunPreLoadError ? { runPre: e.report } : {}),
  };
}

/** Runs one operation per argument, reporting each; the status of the worst. */
async function each(
  names: readonly string[],
  json: boolean,
  op: (name: string) => Promise<PatchOpResult>,
  done: (r: PatchOpResult) => string,
): Promise<number> {
  const results: unknown[] = [];
  let status: number = EXIT.ok;
  for (const n of names) {
    try {
      const r = await op(n);
      results.push(r);
      if (!json) process.stdout.write(`${done(r)}\n`);
    } catch (e) {
      if (!isKpatchError(e) || names.length === 1) {
        if (json && isKpatchError(e)) printJson({ results, error: errorJson(e) });
        throw e;
      }
      process.stderr.write(`kpatch: ${e.format()}\n`);
      results.push({ name: n, error: errorJson(e) });
      status = Math.max(status, exitStatus(e));
    }
  }
  if (json) printJson({ results });
  return status;
}

async function cmdLoad(args: string[]): Promise<number> {
  const { values, positionals } = parse("load", args, {
    ...TRANSITION,
    all: { type: "boolean" },
    "skip-run-pre": { type: "boolean" },
  });
  const options = loadOptions("load", values, note);
  if (values.all) {
    if (positionals.length) throw new UsageError("load: give modules or --all, not both");
    requireRoot("load --all");
    requireLivepatch("load --all");
    const report = await loadInstalled({ ...options, kernelRelease: runningRelease() });
    return reportLoadAll(report, values.json ?? false);
  }
  if (positionals.length === 0) throw new UsageError("load: no module given (or --all)");
  return each(positionals, values.json ?? false, (f) => loadPatch(f, options), describeResult);
}

async function cmdUnload(args: string[]): Promise<number> {
  const { values, positionals } = parse("unload", args, { ...TRANSITION, all: { type: "boolean" } });
  const options = transitionOptions("unload", values, note);
  let names = positionals;
  if (values.all) {
    if (positionals.length) throw new UsageError("unload: give patches or --all, not both");
    requireRoot("unload --all");
    requireLivepatch("unload --all");
    names = patchesNewestFirst();
    if (names.length === 0) {
      if (values.json) printJson({ results: [] });
      else process.stdout.write("no patch is loaded\n");
      return EXIT.ok;
    }
  }
  if (names.length === 0) throw new UsageError("unload: no patch given (or --all)");
  return each(names, values.json ?? false, (n) => unloadPatch(n, options), describeResult);
}

/** Registered patches plus modules of replaced patches, newest first (/proc/modules order). */
function patchesNewestFirst(): string[] {
  const patches = new Set(listPatches().map((p) => p.name));
  const named = loadedModules()
    .filter((m) => patches.has(m.name) || isLivepatchModule(m))
    .map((m) => m.name);
  for (const p of patches) if (!named.includes(p)) named.push(p);
  return named;
}

/** Live patch modules still loaded whose patch is gone (replaced by an atomic-replace patch). */
function leftoverPatchModules(loaded: readonly LoadedPatch[]): string[] {
  const registered = new Set(loaded.map((p) => p.name));
  return loadedModules()
    .filter((m) => isLivepatchModule(m) && !registered.has(m.name))
    .map((m) => m.name);
}

function reportLoadAll(report: LoadAllReport, json: boolean): number {
  if (json) printJson(report);
  else {
    if (report.skipped) process.stdout.write(`not loading patches: ${report.skipped}\n`);
    for (const n of report.blockedNow) note(`${n}: blocked by the crash-loop guard (see 'kpatch list')`);
    for (const b of report.blocked)
      note(`not loading ${b.name}: blocked: ${b.reason}; 'kpatch unblock ${b.name}' lets it load`);
    for (const n of report.present) process.stdout.write(`${n} is already loaded\n`);
    for (const n of report.loaded) process.stdout.write(`loaded ${n}\n`);
    for (const f of report.failed) process.stderr.write(`kpatch: error: ${f.message} [${f.code}]\n`);
    if (
      !report.skipped &&
      report.loaded.length + report.present.length + report.failed.length + report.blocked.length === 0
    )
      process.stdout.write(`no patch is installed for ${runningRelease()}\n`);
  }
  if (report.failed.some((f) => f.code !== "KPATCH_TRANSITION_STALLED")) return EXIT.error;
  return report.failed.length ? EXIT.nothing : EXIT.ok;
}

async function cmdList(args: string[]): Promise<number> {
  const { values, positionals } = parse("list", args, { json: { type: "boolean" } });
  if (positionals.length) throw new UsageError("list: takes no arguments");
  const kernel = runningRelease();
  const livepatch = existsLivepatch();
  const loaded = listPatches();
  const installed = allInstalledPatches();
  const skipped = oddEntries();
  const replaced = leftoverPatchModules(loaded);
  if (values.json) {
    printJson({ kernel, livepatch, loaded, replaced, installed, skipped });
    return EXIT.ok;
  }
  for (const o of skipped) note(`skipped ${escapeControl(o.path)}: ${o.why}, not a kernel release's patches`);
  const out: string[] = ["Loaded patch modules:"];
  if (!livepatch) out.push("  (this kernel has no livepatch support)");
  else if (loaded.length + replaced.length === 0) out.push("  (none)");
  for (const p of loaded) out.push(...describeLoaded(p));
  for (const m of replaced)
    out.push(`  ${m} [replaced; the module is still loaded: 'kpatch unload ${m}' removes it]`);
  out.push("", "Installed patch modules:");
  if (installed.length === 0) out.push("  (none)");
  for (const p of installed) out.push(describeInstalled(p, kernel));
  process.stdout.write(`${out.join("\n")}\n`);
  return EXIT.ok;
}

function existsLivepatch(): boolean {
  try {
    requireLivepatch("list");
    return true;
  } catch {
    return false;
  }
}

const KVER = { "kernel-version": { type: "string", short: "k" } } as const;

async function cmdInstall(args: string[]): Promise<number> {
  const { values, positionals } = parse("install", args, KVER);
  if (positionals.length !== 1) throw new UsageError("install: give one module file");
  const kernelRelease = kernelOption("install", values);
  requireRoot(`install ${positionals[0]}`);
  const p = installPatch(positionals[0]!, { kernelRelease });
  process.stdout.write(`installed ${p.name} for kernel ${p.kernel}: ${p.file}\n`);
  if (p.blocked) {
    const k = kernelRelease === runningRelease() ? "" : ` -k ${kernelRelease}`;
    note(
      `warning: ${p.name} is still blocked by the crash-loop guard (${p.blocked.reason}); it will not load at boot until 'kpatch unblock${k} ${p.name}'`,
    );
  }
  const warning = await enableBootService();
  if (warning) note(`warning: ${warning}`);
  return EXIT.ok;
}

async function cmdUninstall(args: string[]): Promise<number> {
  const { values, positionals } = parse("uninstall", args, { ...KVER, all: { type: "boolean" } });
  const kernelRelease = kernelOption("uninstall", values);
  let names = positionals;
  if (values.all) {
    if (positionals.length) throw new UsageError("uninstall: give modules or --all, not both");
    names = installedPatches(kernelRelease).map((p) => p.name);
  } else if (names.length === 0) throw new UsageError("uninstall: no module given (or --all)");
  requireRoot("uninstall");
  for (const n of names) {
    const p = uninstallPatch(n, { kernelRelease });
    process.stdout.write(`uninstalled ${p.name} (kernel ${p.kernel})\n`);
  }
  return EXIT.ok;
}

async function cmdSignal(args: string[]): Promise<number> {
  const { positionals } = parse("signal", args, {});
  if (positionals.length) throw new UsageError("signal: takes no arguments");
  requireRoot("signal tasks");
  requireLivepatch("signal tasks");
  const patch = patchInTransition();
  if (!patch) {
    process.stdout.write("no patch is in transition\n");
    return EXIT.ok;
  }
  const blockers = blockingTasks(patch);
  const signalled = signalTasks(blockers);
  process.stdout.write(
    `${patch.name}: ${patch.enabled ? "patching" : "unpatching"}; ${blockers.length} task(s) block it, ${signalled.length} signalled\n`,
  );
  for (const t of blockers) process.stdout.write(`  ${describeTask(t)}\n`);
  return EXIT.ok;
}

async function cmdBoot(args: string[]): Promise<number> {
  const { values, positionals } = parse("boot", args, { ...TRANSITION, confirm: { type: "boolean" } });
  if (positionals.length) throw new UsageError("boot: takes no arguments");
  const kernelRelease = runningRelease();
  requireRoot("load patches at boot");
  if (values.confirm) {
    const { confirmed, earlier } = confirmBoot(kernelRelease);
    kmsg(`confirmed ${confirmed.length ? confirmed.join(", ") : "no patch"}`);
    if (values.json) printJson({ confirmed, earlier });
    else {
      process.stdout.write(`confirmed: ${confirmed.length ? confirmed.join(", ") : "(none pending)"}\n`);
      if (earlier.length)
        note(
          `not confirming ${earlier.join(", ")}: loaded by an earlier boot that never confirmed (blocked at the next boot)`,
        );
    }
    return EXIT.ok;
  }
  // kpatch.enable=0 skips everything, even on a kernel without livepatch.
  if (!bootDisabled(readCmdline()) && installedPatches(kernelRelease).length > 0)
    requireLivepatch("load patches at boot");
  const log = (m: string) => {
    note(m);
    kmsg(m);
  };
  const report = await loadInstalled({
    ...loadOptions("boot", values, log),
    kernelRelease,
    boot: true,
  });
  if (report.skipped) kmsg(`not loading patches: ${report.skipped}`);
  for (const n of report.loaded) kmsg(`loaded ${n}`);
  for (const b of report.blocked) kmsg(`not loading ${b.name}: blocked by the crash-loop guard`);
  for (const f of report.failed) kmsg(`failed to load ${f.name}: ${f.code}`);
  return reportLoadAll(report, values.json ?? false);
}

async function cmdUnblock(args: string[]): Promise<number> {
  const { values, positionals } = parse("unblock", args, { ...KVER, all: { type: "boolean" } });
  const kernelRelease = kernelOption("unblock", values);
  let names = positionals.map((n) => patchNameArg("unblock", n));
  if (values.all) {
    if (positionals.length) throw new UsageError("unblock: give modules or --all, not both");
    names = installedPatches(kernelRelease)
      .filter((p) => p.blocked)
      .map((p) => p.name);
  } else if (names.length === 0) throw new UsageError("unblock: no module given (or --all)");
  requireRoot("unblock");
  for (const n of names) {
    const name = findInstalled(n, kernelRelease)?.name ?? n;
    if (unblock(kernelRelease, name)) process.stdout.write(`unblocked ${name}: it loads at the next boot\n`);
    else process.stdout.write(`${name} was not blocked\n`);
  }
  return EXIT.ok;
}

/** A line in the kernel log, so boot-time loading shows in dmesg and the journal. */
function kmsg(message: string): void {
  try {
    writeFileSync("/dev/kmsg", `kpatch: ${message}\n`);
  } catch {
    // No /dev/kmsg (a container): stderr has it.
  }
}

function version(): number {
  let v = "unknown";
  try {
    const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "package.json");
    v = (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
  } catch {
    // Installed without its package.json.
  }
  process.stdout.write(`kpatch (kpatch-ts) ${v}\n`);
  return EXIT.ok;
}

runCli("kpatch", main);
