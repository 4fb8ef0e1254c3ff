/**
 * Test support for the unit tests of src/kernel and src/manage: a synthetic module (.ko bytes
 * with a .modinfo section) and a fake /sys/kernel/livepatch + /proc tree. Nothing here
 * touches the running kernel; module loading refuses fake trees (KPATCH_FAKE_KERNEL).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createElf, SHT_PROGBITS, writeElf } from "../../src/elf/index.js";
import type { KernelPaths } from "../../src/kernel/kernel-paths.js";

/** The bytes of an ET_REL object whose .modinfo holds `fields` (key=value\0 ...). */
export function fakeModule(fields: Record<string, string>): Uint8Array {
  const elf = createElf();
  const text = Object.entries(fields)
    .map(([k, v]) => `${k}=${v}\0`)
    .join("");
  elf.addSection({ name: ".modinfo", type: SHT_PROGBITS, flags: 0x2n, data: new TextEncoder().encode(text) });
  return writeElf(elf);
}

export interface FakePatch {
  name: string;
  enabled?: boolean;
  transition?: boolean;
  objects: Record<string, string[]>;
}

export interface FakeTask {
  pid: number;
  tid?: number;
  comm: string;
  kthread?: boolean;
  patchState: number;
  stack?: string[];
}

/** A temporary directory tree shaped like /sys/kernel/livepatch and /proc. */
export function fakeKernel(
  options: {
    patches?: FakePatch[];
    tasks?: FakeTask[];
    cmdline?: string;
    livepatch?: boolean;
    bootId?: string;
    /** /proc/modules lines ("name size refcount usedby state addr (taints)"). */
    modules?: string[];
  } = {},
): KernelPaths & { root: string } {
  const root = mkdtempSync(join(tmpdir(), "kpatch-fake-kernel-"));
  const paths = {
    root,
    livepatch: join(root, "sys/kernel/livepatch"),
    proc: join(root, "proc"),
    sysModule: join(root, "sys/module"),
  };
  mkdirSync(paths.proc, { recursive: true });
  mkdirSync(paths.sysModule, { recursive: true });
  writeFileSync(join(paths.proc, "cmdline"), `${options.cmdline ?? "console=ttyS0"}\n`);
  writeFileSync(join(paths.proc, "modules"), (options.modules ?? []).map((l) => `${l}\n`).join(""));
  mkdirSync(join(paths.proc, "sys/kernel/random"), { recursive: true });
  writeFileSync(
    join(paths.proc, "sys/kernel/random/boot_id"),
    `${options.bootId ?? "11111111-2222-3333-4444-555555555555"}\n`,
  );
  if (options.livepatch !== false) mkdirSync(paths.livepatch, { recursive: true });
  for (const p of options.patches ?? []) {
    const dir = join(paths.livepatch, p.name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "enabled"), p.enabled === false ? "0\n" : "1\n");
    writeFileSync(join(dir, "transition"), p.transition ? "1\n" : "0\n");
    for (const [obj, funcs] of Object.entries(p.objects)) {
      mkdirSync(join(dir, obj), { recursive: true });
      writeFileSync(join(dir, obj, "patched"), "1\n");
      for (const f of funcs) mkdirSync(join(dir, obj, f.includes(",") ? f : `${f},0`), { recursive: true });
    }
  }
  for (const t of options.tasks ?? []) {
    const tid = t.tid ?? t.pid;
    const dir = join(paths.proc, String(t.pid), "task", String(tid));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "patch_state"), `${t.patchState}\n`);
    writeFileSync(join(dir, "comm"), `${t.comm}\n`);
    const flags = t.kthread ? 0x00208040 : 0x00400100;
    writeFileSync(join(dir, "stat"), `${tid} (${t.comm}) S 2 0 0 0 -1 ${flags} 0 0 0 0 0 0 0 0 20 0 1 0\n`);
    writeFileSync(join(dir, "stack"), (t.stack ?? []).map((f) => `[<0>] ${f}\n`).join(""));
  }
  return paths;
}
