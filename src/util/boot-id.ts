/**
 * This boot's identity: what tells a record written before a reboot (a crash marker, a lock's
 * holder) from one of this boot.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** This boot's id: /proc/sys/kernel/random/boot_id, else the boot time from /proc/stat. */
export function currentBootId(proc = "/proc"): string {
  try {
    return readFileSync(join(proc, "sys/kernel/random/boot_id"), "utf8").trim();
  } catch {
    const stat = readFileSync(join(proc, "stat"), "utf8");
    return `btime-${/^btime (\d+)/m.exec(stat)?.[1] ?? "unknown"}`;
  }
}
