/**
 * CPU time of this process and of every child it has waited for (with their own waited-for
 * children: gcc, make, cc1), in seconds. On a loaded machine wall time says how busy the others
 * were; CPU time says what the work cost.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

export function cpuSeconds(): number {
  const self = process.cpuUsage();
  // /proc/self/stat after the command name: state is field 3; cutime, cstime are fields 16, 17.
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const children = (Number(fields[13]) + Number(fields[14])) / ticksPerSecond;
  return (self.user + self.system) / 1e6 + children;
}
