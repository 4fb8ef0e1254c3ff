/**
 * The guest runner: boot the lab kernel under QEMU with an initramfs that carries the given
 * files and commands, and return each command's output and exit status plus the kernel log.
 * A panic, an oops, a "Call Trace" (unless allowed) or a timeout is an error that carries the
 * console log.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KpatchError } from "../util/errors.js";
import { exec } from "../util/exec.js";
import type { LabErrorCode } from "./error-codes.js";
import { type GuestFile, runArchive } from "./initramfs.js";
import { int3Explanation, int3Site } from "./int3.js";
import type { Lab } from "./setup.js";

export interface GuestOptions {
  lab: Pick<Lab, "bzImage" | "initramfs">;
  files?: readonly (string | GuestFile)[];
  /** Shell commands, run one after the other in /lab/files, each whatever the previous returned. */
  commands: readonly string[];
  /** Whole run, boot to poweroff (default 120 s; TCG is slow). */
  timeoutMs?: number;
  memoryMb?: number;
  cpus?: number;
  /**
   * QEMU's TCG threading (-accel tcg,thread=...): multi runs each vCPU on its own host thread
   * (QEMU's default for an x86-64 guest here), single runs them all round-robin on one. Default:
   * $KPATCH_LAB_TCG_THREAD, else QEMU's own default. Ignored under KVM.
   */
  tcgThread?: TcgThread;
  /** Extra kernel command line. */
  append?: string;
  /** Mount this machine's / read-only at /host in the guest (9p over virtio). */
  shareHost?: boolean;
  /** A raw disk image attached as virtio-blk (/dev/vda in the guest). */
  disk?: string;
  /**
   * Mount the disk (ext2) at /disk before the commands and run its boot scripts,
   * /disk/boot.d/* in name order, the way an init system would at boot (their output is on the
   * console and in /tmp/kplab-boot.log).
   */
  diskBoot?: boolean;
  /**
   * A Debian root file system image (src/lab/debian-rootfs.ts) booted as /dev/vda with systemd
   * as init: the initramfs's /init is lab/initramfs/init-root, which hands the commands over to
   * the image's kplab-run.service (lab/debian/kplab-run). The guest writes to the image.
   */
  rootDisk?: string;
  /** A virtio-net card on QEMU's user network (the guest is 10.0.2.15, this machine 10.0.2.2). */
  network?: boolean;
  /** Do not fail on "Call Trace" in the kernel log (tests of WARN paths). */
  allowCallTrace?: boolean;
  /** Every console line as it arrives (for a live display). */
  onConsoleLine?: (line: string) => void;
}

export interface GuestCommandResult {
  command: string;
  output: string;
  exitCode: number;
}

export interface GuestResult {
  commands: GuestCommandResult[];
  /** dmesg, read at the end of the run. */
  kernelLog: string;
  /** Everything the serial console showed. */
  console: string;
  accel: string;
  wallMs: number;
  /** Guest uptime (s) when the first command started and when the last one ended. */
  guestReadyS?: number;
  guestDoneS?: number;
}

const MARK = /@@KPLAB-(READY|BEGIN|END|DMESG|DONE|ERROR)\s*([^@]*)@@/;
/** A kernel printk line on the console (PRINTK_TIME is on in the lab). */
const PRINTK = /^\[\s*\d+\.\d+\]/;

export type TcgThread = "single" | "multi";

/** The -accel value: tcg or kvm ($KPATCH_LAB_ACCEL), with TCG's thread mode when one is asked for. */
function accelerator(tcgThread: TcgThread | undefined): string {
  const a = process.env["KPATCH_LAB_ACCEL"] ?? "tcg";
  if (a !== "tcg" && a !== "kvm")
    throw new KpatchError("LAB_ACCEL", `Cannot use accelerator '${a}': tcg or kvm`);
  const thread = tcgThread ?? process.env["KPATCH_LAB_TCG_THREAD"];
  if (thread === undefined || thread === "" || a === "kvm") return a;
  if (thread !== "single" && thread !== "multi")
    throw new KpatchError("LAB_ACCEL", `Cannot use TCG thread mode '${thread}': single or multi`);
  return `tcg,thread=${thread}`;
}

export function qemuArgs(options: GuestOptions, initrd: string, accel: string): string[] {
  const append = ["console=ttyS0", "panic=-1", "oops=panic", "loglevel=7", "rdinit=/init"];
  if (options.shareHost) append.push("kplab.share=host");
  if (options.diskBoot) append.push("kplab.diskboot");
  // A Debian guest's dpkg and ext4 writeback (crc32c in software under TCG) can hold its one vCPU
  // longer than RCU's 21 s stall limit on a loaded host: a CI run failed on such a Call Trace in
  // ext4 writeback with no WARNING or BUG line. 300 s (RCU's maximum) still reports a real hang.
  if (options.rootDisk)
    append.push("kplab.root", "systemd.show_status=0", "rcupdate.rcu_cpu_stall_timeout=300");
  if (options.append) append.push(options.append);
  const args = [
    "-accel",
    accel,
    "-cpu",
    accel.startsWith("kvm") ? "host" : "max",
    "-m",
    String(options.memoryMb ?? 1024),
    "-smp",
    String(options.cpus ?? 1),
    "-nographic",
    "-no-reboot",
    "-nodefaults",
    "-serial",
    "stdio",
    "-monitor",
    "none",
    "-kernel",
    options.lab.bzImage,
    "-initrd",
    initrd,
    "-append",
    append.join(" "),
  ];
  if (options.shareHost) {
    args.push("-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on");
  }
  if (options.rootDisk && options.disk)
    throw new KpatchError("LAB_FILE", "Cannot attach both a disk and a root disk to the guest");
  const disk = options.rootDisk ?? options.disk;
  if (disk) args.push("-drive", `file=${disk},if=virtio,format=raw`);
  if (options.network) args.push("-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0");
  return args;
}

/** What the console has said so far, mark by mark. */
interface ConsoleState {
  results: GuestCommandResult[];
  current: { index: number; lines: string[] } | undefined;
  inDmesg: boolean;
  dmesg: string[];
  ready: number | undefined;
  done: number | undefined;
  finished: boolean;
  errors: string[];
}

/** One mark of lab/initramfs/init (READY, BEGIN, END, DMESG, DONE, ERROR) applied to the state. */
function applyMark(
  state: ConsoleState,
  kind: string | undefined,
  arg: string,
  commands: readonly string[],
): void {
  if (kind === "READY") state.ready = Number(arg);
  else if (kind === "BEGIN") state.current = { index: Number(arg), lines: [] };
  else if (kind === "END" && state.current) {
    const rc = Number(arg.trim().split(/\s+/)[1]);
    const lines = state.current.lines;
    const output = lines.length ? `${lines.join("\n")}\n` : "";
    state.results.push({ command: commands[state.current.index] ?? "", output, exitCode: rc });
    state.current = undefined;
  } else if (kind === "DMESG") state.inDmesg = true;
  else if (kind === "DONE") {
    state.inDmesg = false;
    state.finished = true;
    state.done = Number(arg);
  } else if (kind === "ERROR") state.errors.push(arg.trim());
}

/** Parse the console of a run into per-command results (see lab/initramfs/init). */
export function parseConsole(console: string, commands: readonly string[]) {
  const state: ConsoleState = {
    results: [],
    current: undefined,
    inDmesg: false,
    dmesg: [],
    ready: undefined,
    done: undefined,
    finished: false,
    errors: [],
  };
  for (const raw of console.split("\n")) {
    const line = raw.replace(/\r$/, "");
    const m = MARK.exec(line);
    if (m) applyMark(state, m[1], m[2] ?? "", commands);
    else if (state.inDmesg) state.dmesg.push(line);
    else if (state.current && !PRINTK.test(line)) state.current.lines.push(line);
  }
  const { results, ready, done, finished, errors } = state;
  return { results, kernelLog: state.dmesg.join("\n"), ready, done, finished, errors };
}

/** What in a kernel log means the run failed, or undefined. */
export function kernelFailure(
  log: string,
  allowCallTrace: boolean,
): { code: LabErrorCode; line: string; context: string } | undefined {
  const checks: [LabErrorCode, RegExp][] = [
    ["GUEST_PANIC", /Kernel panic/],
    ["GUEST_OOPS", /Oops:|BUG: |general protection fault|unable to handle/],
  ];
  if (!allowCallTrace) checks.push(["GUEST_CALL_TRACE", /Call Trace:/]);
  const lines = log.split("\n");
  for (const [code, re] of checks) {
    const at = lines.findIndex((l) => re.test(l));
    // The lines before it say what it is (a WARNING's file and line, a stall, an allocation failure).
    if (at >= 0)
      return { code, line: lines[at]!.trim(), context: lines.slice(Math.max(0, at - 12), at + 1).join("\n") };
  }
  return undefined;
}

/**
 * Runs the guest; a boot that fails before the guest's first command (no READY mark: TCG on a
 * loaded host can stall the boot, or panic with "IO-APIC + timer doesn't work") is retried once,
 * noted on stderr, since no command ran and nothing of the test was seen. Runs with a disk or a
 * root disk are never retried: its boot scripts (or systemd's units) may have run and changed it.
 */
export async function runGuest(options: GuestOptions): Promise<GuestResult> {
  try {
    return await runGuestOnce(options);
  } catch (e) {
    if (!(e instanceof BootFailure)) throw e;
    if (options.disk || options.rootDisk) throw e.cause;
    process.stderr.write(
      `kpatch-lab: the guest failed to boot, booting it once more: ${e.cause.message.split("\n")[0]}\n`,
    );
    try {
      return await runGuestOnce(options);
    } catch (again) {
      throw again instanceof BootFailure ? again.cause : again;
    }
  }
}

/** A failure before the guest ran its first command (the KpatchError is the cause). */
class BootFailure extends Error {
  declare readonly cause: KpatchError;
  constructor(cause: KpatchError) {
    super(cause.message, { cause });
  }
}

async function runGuestOnce(options: GuestOptions): Promise<GuestResult> {
  const accel = accelerator(options.tcgThread);
  const tmp = mkdtempSync(join(tmpdir(), "kpatch-lab-"));
  try {
    const initrd = join(tmp, "initrd.cpio");
    const base = readFileSync(options.lab.initramfs);
    const extra = runArchive(options.files ?? [], options.commands, options.rootDisk ? "root" : "busybox");
    writeFileSync(initrd, Buffer.concat([base, extra]));
    const timeoutMs = options.timeoutMs ?? 120_000;
    const r = await exec("qemu-system-x86_64", qemuArgs(options, initrd, accel), {
      timeoutMs,
      maxBuffer: 64 << 20,
      ...(options.onConsoleLine
        ? { onLine: (l: string) => options.onConsoleLine!(l.replace(/\r$/, "")) }
        : {}),
    });
    const console = r.stdout.replace(/\r/g, "");
    const parsed = parseConsole(console, options.commands);
    const tail = console.split("\n").slice(-60).join("\n");
    const failure = kernelFailure(`${console}\n${parsed.kernelLog}`, options.allowCallTrace ?? false);
    const booted = parsed.ready !== undefined;
    const fail = (e: KpatchError) => (booted ? e : new BootFailure(e));
    if (failure) {
      const log = `${console}\n${parsed.kernelLog}`;
      const site = /Oops: int3/.test(log) ? await int3Site(log, options.lab.bzImage) : undefined;
      const why = site ? `\n${int3Explanation(site, accel, options.cpus ?? 1)}` : "";
      throw fail(
        new KpatchError(
          failure.code,
          `The guest kernel failed: ${failure.line}${why}\n--- where it starts ---\n${failure.context}\n--- console (last lines) ---\n${tail}`,
        ),
      );
    }
    if (r.timedOut) {
      throw fail(
        new KpatchError(
          "GUEST_TIMEOUT",
          `The guest did not power off within ${timeoutMs / 1000} s\n--- console (last lines) ---\n${tail}`,
        ),
      );
    }
    if (!parsed.finished || parsed.results.length !== options.commands.length) {
      throw fail(
        new KpatchError(
          "GUEST_NO_RESULT",
          `The guest stopped before running all commands (qemu exit ${r.code}): ${r.stderr.trim()}\n--- console (last lines) ---\n${tail}`,
        ),
      );
    }
    if (parsed.errors.length)
      throw new KpatchError("GUEST_SETUP", `The guest init failed: ${parsed.errors.join("; ")}`);
    return {
      commands: parsed.results,
      kernelLog: parsed.kernelLog,
      console,
      accel,
      wallMs: r.durationMs,
      ...(parsed.ready !== undefined ? { guestReadyS: parsed.ready } : {}),
      ...(parsed.done !== undefined ? { guestDoneS: parsed.done } : {}),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
