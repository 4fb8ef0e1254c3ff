/**
 * What an "Oops: int3" in a lab guest hit. An int3 the kernel does not recognise is left over
 * from text_poke_bp(): the kernel writes int3 over an instruction it rewrites, makes every CPU
 * sync, finishes the instruction, and from then on no CPU may execute that int3. Under QEMU's
 * TCG with thread=multi a vCPU can still run a translation made before another vCPU's write
 * was invalidated, and so take an int3 the kernel has already removed. The site tells who
 * rewrote it: a `call __SCT__*` is a static call (with PREEMPT_DYNAMIC the livepatch core itself
 * flips cond_resched to klp_cond_resched at every transition's start, sched_dynamic_klp_enable,
 * and at its end sched_dynamic_klp_disable re-applies the preempt mode, __sched_dynamic_update,
 * which enables and then disables again preempt_schedule, preempt_schedule_notrace and
 * irqentry_exit_cond_resched under preempt=none or voluntary: on the 6.12 lab, voluntary, ~2,800
 * sites rewritten at each transition's end, irqentry_exit's tail jump among them), a
 * `call __fentry__` or 5-byte nop at a function's start is an ftrace site; our modules write no
 * vmlinux text.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { exec } from "../util/exec.js";

/** The RIP of an int3 oops: "RIP: 0010:vfree+0x6c/0x1a0" (the address after the int3 byte). */
const RIP = /RIP: 00\d\d:([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)\/0x[0-9a-f]+/;

export interface Int3Site {
  /** sym+0xoff of the int3 byte. */
  site: string;
  /**
   * The byte memory held at the site when the oops was printed (the one before the <..> byte of
   * the oops's Code: line). Not 0xcc: the kernel had finished rewriting the site, yet a vCPU
   * trapped on an int3 there.
   */
  byteAtSite?: number;
  address?: bigint;
  instruction?: string;
  kind: "static call" | "ftrace" | "other" | "unknown";
}

/** The vmlinux of a lab bzImage (<build>/arch/x86/boot/bzImage), if it is there. */
function vmlinuxOf(bzImage: string): string | undefined {
  const v = join(dirname(bzImage), "..", "..", "..", "vmlinux");
  return existsSync(v) ? v : undefined;
}

function symbolAddress(systemMap: string, name: string): bigint | undefined {
  const m = new RegExp(`^([0-9a-f]+) [tTwW] ${name.replace(/[.$]/g, "\\$&")}$`, "m").exec(
    readFileSync(systemMap, "utf8"),
  );
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/** The byte before the RIP byte (<xx>) of the first Code: line of an oops's text. */
function codeByteBefore(text: string): number | undefined {
  const code = /Code: ([0-9a-f <>]+)/.exec(text)?.[1]?.trim().split(/\s+/);
  const at = code?.findIndex((b) => b.startsWith("<")) ?? -1;
  const before = at > 0 ? code?.[at - 1] : undefined;
  return before && /^[0-9a-f]{2}$/.test(before) ? Number.parseInt(before, 16) : undefined;
}

/** Finds the int3 site of an oops log and, with the lab's vmlinux, what instruction is there. */
export async function int3Site(log: string, bzImage: string): Promise<Int3Site | undefined> {
  const after = log.slice(log.search(/Oops: int3/));
  const rip = RIP.exec(after);
  if (!rip) return undefined;
  const [, sym, offHex] = rip;
  const off = Number.parseInt(offHex!, 16) - 1;
  const byteAtSite = codeByteBefore(after.slice(rip.index));
  const site: Int3Site = {
    site: `${sym}+0x${off.toString(16)}`,
    ...(byteAtSite !== undefined ? { byteAtSite } : {}),
    kind: "unknown",
  };
  const vmlinux = vmlinuxOf(bzImage);
  const map = vmlinux && join(dirname(vmlinux), "System.map");
  if (!vmlinux || !map || !existsSync(map)) return site;
  const base = symbolAddress(map, sym!);
  if (base === undefined) return site;
  const address = base + BigInt(off);
  const r = await exec("objdump", [
    "-d",
    `--start-address=0x${address.toString(16)}`,
    `--stop-address=0x${(address + 5n).toString(16)}`,
    vmlinux,
  ]);
  const line = r.stdout.split("\n").find((l) => l.trimStart().startsWith(`${address.toString(16)}:`));
  const instruction = line?.split("\t").slice(2).join(" ").trim();
  let kind: Int3Site["kind"] = "other";
  if (instruction && /<__SCT__/.test(instruction)) kind = "static call";
  else if (instruction && (/<__fentry__>/.test(instruction) || (off <= 4 && /^nop/.test(instruction))))
    kind = "ftrace";
  return { ...site, address, ...(instruction ? { instruction } : {}), kind };
}

/** The lines the runner adds to an int3 oops's failure message. */
export function int3Explanation(s: Int3Site, accel: string, cpus: number): string {
  const where = s.address !== undefined ? ` (0x${s.address.toString(16)}: ${s.instruction ?? "?"})` : "";
  const mode = accel.startsWith("tcg")
    ? `${accel}${accel.includes("thread=") ? "" : " (QEMU's default thread mode, multi here)"}, ${cpus} vCPU(s)`
    : accel;
  const who =
    s.kind === "static call"
      ? "a static-call site: rewritten by text_poke_bp; the livepatch core itself rewrites cond_resched's at each transition's start, and at its end (re-applying the preempt mode) cond_resched's, and preempt_schedule's, preempt_schedule_notrace's and irqentry_exit_cond_resched's twice under preempt=none/voluntary"
      : s.kind === "ftrace"
        ? "an ftrace site: rewritten by ftrace when a patch is enabled or disabled"
        : s.kind === "other"
          ? "neither a static call nor an ftrace site (a jump label or an alternative?)"
          : "not resolved (no vmlinux beside the kernel image)";
  const memory =
    s.byteAtSite === undefined
      ? ""
      : s.byteAtSite === 0xcc
        ? "The oops's Code: line still shows the int3 at the site (a rewrite in progress, or a stray int3). "
        : `The oops's Code: line shows ${s.byteAtSite.toString(16)} at the site, not the int3: the kernel had ` +
          "finished rewriting it, and a CPU trapped on the int3 all the same (text_poke_bp's sync forbids that on " +
          "hardware; a vCPU running a translation made while the int3 was there does it). ";
  return (
    `int3 at ${s.site}${where}: ${who}; accelerator ${mode}. ${memory}` +
    "A leftover text_poke_bp int3 is a known hazard of QEMU TCG thread=multi (one vCPU runs a stale " +
    "translation of code another rewrote); our modules write no vmlinux text. See src/lab/int3.ts; " +
    "retry with KPATCH_LAB_TCG_THREAD=single to tell TCG from the kernel."
  );
}
