/**
 * kpatch info: what a patch module changes, from its own metadata (a .ko file, or the module
 * of an installed patch), and its state on this system (loaded, installed, blocked).
 */
import { existsSync } from "node:fs";
import { runningRelease } from "../kernel/kernel-paths.js";
import { findPatch } from "../kernel/livepatch-sysfs.js";
import { type ModuleInfo, readModuleFile } from "../kernel/modinfo.js";
import { type ModuleSignature, moduleSignature } from "../kernel/module-signature.js";
import { findPatchMetadata, type PatchMetadata } from "../kernel/patch-metadata.js";
import { findInstalled } from "../manage/install.js";
import { KpatchError } from "../util/errors.js";
import { isModuleName, moduleNameOf } from "../util/module-name.js";
import { parse, patchNameArg, printJson } from "./kpatch-args.js";
import { describeLoaded, groupFields } from "./kpatch-format.js";
import { EXIT, UsageError } from "./main.js";

export async function cmdInfo(args: string[]): Promise<number> {
  const { values, positionals } = parse("info", args, { json: { type: "boolean" } });
  if (positionals.length !== 1) throw new UsageError("info: give one module");
  const arg = positionals[0]!;
  const kernel = runningRelease();
  // Anything on disk is a file, read or refused as one (a FIFO, a directory); else a patch
  // name (checked: it reaches sysfs), installed or loaded; else the clear "Cannot read" error.
  const looksLikeFile = arg.includes("/") || arg.endsWith(".ko");
  let file: string | undefined;
  let name: string | undefined;
  if (existsSync(arg) || (looksLikeFile && !isModuleName(moduleNameOf(arg)))) file = arg;
  else {
    name = patchNameArg("info", arg);
    file = findInstalled(name, kernel)?.file;
    if (!file && looksLikeFile && !findPatch(name)) file = arg;
  }
  let info: ModuleInfo | undefined;
  let metadata: PatchMetadata | undefined;
  let signature: ModuleSignature | undefined;
  if (file) {
    const m = readModuleFile(file);
    info = m.info;
    signature = moduleSignature(m.bytes);
    metadata = findPatchMetadata(m.elf);
  }
  const patchName = info?.name ?? name!;
  const loaded = findPatch(patchName);
  const installed = findInstalled(patchName, kernel);
  if (!info && !loaded) {
    throw new KpatchError(
      "KPATCH_NOT_FOUND",
      `Cannot show ${arg}: no such file, and no patch of that name is installed or loaded`,
    );
  }
  if (values.json) {
    printJson({
      name: patchName,
      file,
      livepatch: info?.livepatch,
      vermagic: info?.vermagic,
      signature: info ? (signature ?? null) : undefined,
      patch: metadata,
      modinfo: info ? Object.fromEntries(groupFields(info.fields)) : undefined,
      loaded,
      installed,
    });
    return EXIT.ok;
  }
  const out: string[] = [`${patchName}${file ? ` (${file})` : ""}`];
  if (info) {
    out.push(`  livepatch module: ${info.livepatch ? "yes" : "NO (no livepatch=Y in its modinfo)"}`);
    out.push(`  built for:        ${info.vermagic ?? "(no vermagic)"}`);
    out.push(
      `  signed:           ${signature ? `yes (${signature.kind}, ${signature.length} bytes)` : "no"}`,
    );
    if (info.description) out.push(`  description:      ${info.description}`);
  }
  out.push(
    `  loaded:           ${loaded ? `yes, ${loaded.enabled ? "enabled" : "disabled"}${loaded.transition ? ", in transition" : ""}` : "no"}`,
  );
  out.push(
    `  installed:        ${installed ? `${installed.file}${installed.blocked ? " (BLOCKED by the crash-loop guard)" : ""}` : "no"}`,
  );
  if (metadata) {
    out.push(`  atomic replace:   ${metadata.replace ? "yes" : "no"}`);
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
  } else if (loaded) {
    out.push("  patches (from the running kernel):");
    out.push(
      ...describeLoaded(loaded)
        .slice(1)
        .map((l) => `  ${l}`),
    );
  } else if (info?.livepatch) {
    out.push("  patches:          (its klp_patch structures could not be read from the module)");
  }
  if (info) {
    out.push("modinfo:");
    for (const [k, v] of info.fields) out.push(`  ${`${k}:`.padEnd(16)} ${v}`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
  return EXIT.ok;
}
