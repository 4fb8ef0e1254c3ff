/**
 * How the kpatch command prints patches and operation results (text form; --json prints the
 * objects themselves).
 */
import type { LoadedPatch } from "../kernel/livepatch-sysfs.js";
import type { PatchOpResult } from "../kernel/patch-ops.js";
import type { InstalledPatch } from "../manage/install.js";

export function describeResult(r: PatchOpResult): string {
  const t = `${(r.elapsedMs / 1000).toFixed(1)} s`;
  const sig = r.signalled.length ? `, ${r.signalled.length} task(s) signalled` : "";
  switch (r.action) {
    case "loaded":
      return `loaded ${r.name} (transition ${t}${sig})`;
    case "enabled":
      return `enabled ${r.name} again (transition ${t}${sig})`;
    case "unloaded":
      return `unloaded ${r.name} (transition ${t}${sig})`;
    case "removed":
      return `removed module ${r.name} (its patch was already replaced or disabled)`;
  }
}

export function describeLoaded(p: LoadedPatch): string[] {
  const state = [p.enabled ? "enabled" : "disabled"];
  if (p.transition) state.push("in transition");
  if (p.replace) state.push("atomic replace");
  const lines = [`  ${p.name} [${state.join(", ")}]`];
  for (const o of p.objects) {
    // sysfs shows sympos 1 for a unique name too: only a later position says something.
    const fns = o.functions.map((f) => (f.sympos > 1 ? `${f.name},${f.sympos}` : f.name)).join(" ");
    const waiting = o.patched === false ? " (not loaded yet)" : "";
    lines.push(`    ${o.name}${waiting}: ${fns}`);
  }
  return lines;
}

export function describeInstalled(p: InstalledPatch, running: string): string {
  const cur = p.kernel === running ? "" : " (not the running kernel)";
  const blocked = p.blocked
    ? `\n    BLOCKED at boot by the crash-loop guard: ${p.blocked.reason}; 'kpatch unblock${p.kernel === running ? "" : ` -k ${p.kernel}`} ${p.name}' lets it load`
    : "";
  const broken = p.broken
    ? `\n    BROKEN: ${p.broken.message}; it cannot load ('kpatch uninstall${p.kernel === running ? "" : ` -k ${p.kernel}`} ${p.name}' forgets it)`
    : "";
  return `  ${p.name} (${p.kernel})${cur} ${p.file}${blocked}${broken}`;
}

export function groupFields(fields: [string, string][]): Map<string, string | string[]> {
  const m = new Map<string, string | string[]>();
  for (const [k, v] of fields) {
    const old = m.get(k);
    m.set(k, old === undefined ? v : Array.isArray(old) ? [...old, v] : [old, v]);
  }
  return m;
}
