/**
 * bench/boot: how long a lab guest takes, boot to poweroff with one trivial command, for each
 * kernel that is set up: the lab kernels (kpatch-lab setup --kernel) and Debian's stock images
 * (kpatch-lab setup --distro). Prints, per kernel, the median and range over RUNS of the wall
 * time of the whole QEMU run and of the guest's uptime when /init starts the commands (after
 * the kernel's boot and, for a stock kernel, loading its virtio, 9p and ext4 modules), with and
 * without the host share mounted over 9p. QEMU runs TCG here: the figures move with the host's
 * load, which is why there are several runs.
 *
 *   node dist/bench/boot.js [RUNS]
 */
import { type DistroLab, findDistroLab } from "../src/lab/distro.js";
import { runGuest } from "../src/lab/guest.js";
import { KERNEL_SERIES } from "../src/lab/paths.js";
import { findLab, type Lab } from "../src/lab/setup.js";

const runs = Number(process.argv[2] ?? 3);
const kernels: { name: string; lab: Lab | DistroLab }[] = [];
for (const series of KERNEL_SERIES) {
  const lab = findLab(series);
  if (lab) kernels.push({ name: `lab ${series} (${lab.kernelRelease})`, lab });
  const distro = findDistroLab(series);
  if (distro) kernels.push({ name: `stock ${distro.kernelRelease}`, lab: distro });
}
if (kernels.length === 0) {
  console.log("bench/boot: no lab kernel is set up (kpatch-lab setup, kpatch-lab setup --distro 6.12)");
  process.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[], f: (x: number) => string) =>
  `${f(median(xs))} (${f(Math.min(...xs))}-${f(Math.max(...xs))})`;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

console.log(`bench/boot: ${runs} runs each, boot to poweroff running 'true' (TCG)`);
console.log(`${"kernel".padEnd(40)} ${"share".padEnd(6)} ${"wall".padEnd(20)} commands start at uptime`);
for (const k of kernels) {
  for (const shareHost of [false, true]) {
    const wall: number[] = [];
    const ready: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await runGuest({ lab: k.lab, commands: ["true"], shareHost });
      wall.push(r.wallMs);
      ready.push((r.guestReadyS ?? Number.NaN) * 1000);
    }
    console.log(
      `${k.name.padEnd(40)} ${(shareHost ? "9p" : "none").padEnd(6)} ${range(wall, s).padEnd(20)} ${range(ready, s)}`,
    );
  }
}
