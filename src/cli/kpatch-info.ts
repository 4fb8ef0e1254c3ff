/**
 * kpatch info: what a patch module changes, from its own metadata (a .ko file, or the module
 * of an installed patch), and its state on this system (loaded, installed, blocked).
 */
import { existsSync } from "node:fs";
import { runningRelease } from "../kernel/kernel-paths.js";
import { findPatch, type LoadedPatch } from "../kernel/livepatch-sysfs.js";
import { type ModuleInfo, readModuleFile } from "../kernel/modinfo.js";
import { type ModuleSignature, moduleSignature } from "../kernel/module-signature.js";
import { findPatchMetadata, type PatchMetadata } from "../kernel/patch-metadata.js";
import { findInstalled, type InstalledPatch } from "../manage/install.js";
import { KpatchError } from "../util/errors.js";
import { isModuleName, moduleNameOf } from "../util/module-name.js";
import { escapeControl } from "../util/printable.js";
import { parse, patchNameArg, printJson } from "./kpatch-args.js";
import { describeLoaded, groupFields } from "./kpatch-format.js";
import { EXIT, UsageError } from "./main.js";

/** The module file and the patch name `arg` names: a file on disk, or an installed or loaded patch. */
function infoTarget(arg: string, kernel: string): { file?: string | undefined; name?: string } {
  // Anything on disk is a file, read or refused as one (a FIFO, a directory); else a patch
  // name (checked: it reaches sysfs), installed or loaded; else the clear "Cannot read" error.
  const looksLikeFile = arg.includes("/") || arg.endsWith(".ko");
  if (existsSync(arg) || (looksLikeFile && !isModuleName(moduleNameOf(arg)))) return { file: arg };
  const name = patchNameArg("info", arg);
  const file = findInstalled(name, kernel)?.file;
  if (!file && looksLikeFile && !findPatch(name)) return { file: arg, name };
  return { file, name };
}

/** What a module file says of itself. */
interface ModuleFacts {
  info: ModuleInfo;
  signature: ModuleSignature | undefined;
  metadata: PatchMetadata | undefined;
}

function readModuleFacts(file: string): ModuleFacts {
  const m = readModuleFile(file);
  return { info: m.info, signature: moduleSignature(m.bytes), metadata: findPatchMetadata(m.elf) };
}

export async function cmdInfo(args: string[]): Promise<number> {
  const { values, positionals } = parse("info", args, { json: { type: "boolean" } });
  if (positionals.length !== 1) throw new UsageError("info: give one module");
  const arg = positionals[0]!;
  const kernel = runningRelease();
  const { file, name } = infoTarget(arg, kernel);
  const facts = file ? readModuleFacts(file) : undefined;
  const patchName = facts?.info.name ?? name!;
  const loaded = findPatch(patchName);
  const installed = findInstalled(patchName, kernel);
  if (!facts && !loaded) {
    throw new KpatchError(
      "KPATCH_NOT_FOUND",
      `Cannot show ${arg}: no such file, and no patch of that name is installed or loaded`,
    );
  }
  if (values.json) {
    const info = facts?.info;
    printJson({
      name: patchName,
      file,
      livepatch: info?.livepatch,
      vermagic: info?.vermagic,
      signature: facts ? (facts.signature ?? null) : undefined,
      patch: facts?.metadata,
      modinfo: info ? Object.fromEntries(groupFields(info.fields)) : undefined,
      loaded,
      installed,
    });
    return EXIT.ok;
  }
  const out: string[] = [`${patchName}${file ? ` (${file})` : ""}`];
  if (facts) out.push(...moduleLines(facts));
  out.push(...stateLines(loaded, installed));
  out.push(...patchLines(facts, loaded));
  if (facts) {
    out.push("modinfo:");
    for (const [k, v] of facts.info.fields) out.push(`  ${`${k}:`.padEnd(16)} ${v}`);
  }
  // Module strings are anyone's: one escaped line each, so none can add a line or drive the terminal.
  process.stdout.write(`${out.map(escapeControl).join("\n")}\n`);
  return EXIT.ok;
}

function moduleLines({ info, signature }: ModuleFacts): string[] {
  const out = [
    `  livepatch module: ${info.livepatch ? "yes" : "NO (no livepatch=Y in its modinfo)"}`,
    `  built for:        ${info.vermagic ?? "(no vermagic)"}`,
    `  signed:           ${signature ? `yes (${signature.kind}, ${signature.length} bytes)` : "no"}`,
  ];
  if (info.description) out.push(`  description:      ${info.description}`);
  return out;
}

function stateLines(loaded: LoadedPatch | undefined, installed: InstalledPatch | undefined): string[] {
  const state = loaded
    ? `yes, ${loaded.enabled ? "enabled" : "disabled"}${loaded.transition ? ", in transition" : ""}`
    : "no";
  const blocked = installed?.blocked ? " (BLOCKED by the crash-loop guard)" : "";
  return [
    `  loaded:           ${state}`,
    `  installed:        ${installed ? `${installed.file}${blocked}` : "no"}`,
  ];
}

/** What the patch changes: from the module's own structures, else from the running kernel. */
function patchLines(facts: ModuleFacts | undefined, loaded: LoadedPatch | undefined): string[] {
  const metadata = facts?.metadata;
  if (metadata) return metadataLines(metadata);
  if (loaded) {
    const lines = describeLoaded(loaded)
      .slice(1)
      .map((l) => `  ${l}`);
    return ["  patches (from the running kernel):", ...lines];
  }
  if (facts?.info.livepatch)
    return ["  patches:          (its klp_patch structures could not be read from the module)"];
  return [];
}

function metadataLines(metadata: PatchMetadata): string[] {
  const out = [`  atomic replace:   ${metadata.replace ? "yes" : "no"}`];
  if (metadata.states.length)
    out.push(`  states:           ${metadata.states.map((s) => `${s.id} v${s.version}`).join(", ")}`);
  out.push("  patches:");
  for (const o of metadata.objects) {
    out.push(`    ${o.name}:`);
    for (const f of o.functions) {
      out.push(
        `      ${f.name}${f.sympos ? `,${f.sympos}` : ""}${f.newFunction ? ` -> ${f.newFunction}` : ""}`,
      );
    }
    for (const [k, v] of Object.entries(o.callbacks)) out.push(`      (${k} callback: ${v})`);
  }
  return out;
}
