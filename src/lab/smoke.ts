/**
 * The lab smoke test, shared by the test suite and `kpatch-lab demo`: load the kernel's own
 * livepatch sample, see /proc/cmdline patched, disable and unload it, see the original again.
 */
import { join } from "node:path";
import type { GuestCommandResult, GuestResult } from "./guest.js";
import type { Lab } from "./setup.js";

export const SAMPLE_NAME = "livepatch_sample";
export const SAMPLE_TEXT = "this has been live patched";

export function sampleModule(lab: Pick<Lab, "buildDir">): string {
  return join(lab.buildDir, "samples", "livepatch", "livepatch-sample.ko");
}

/** Shell that waits (up to `seconds`) until a patch's transition is 0 or the patch is gone. */
export function waitTransition(patch: string, seconds = 30): string {
  const t = `/sys/kernel/livepatch/${patch}/transition`;
  return `i=0; while [ -e ${t} ] && [ "$(cat ${t} 2>/dev/null)" != 0 ]; do i=$((i+1)); if [ $i -gt ${seconds * 10} ]; then echo "transition still 1 after ${seconds} s"; exit 1; fi; sleep 0.1; done; echo "transition done after $((i*100)) ms"`;
}

export interface SmokeStep {
  what: string;
  command: string;
  /** Checks the step's result; returns a failure message or undefined. */
  check?: (r: GuestCommandResult) => string | undefined;
}

const exit0 = (r: GuestCommandResult) =>
  r.exitCode === 0 ? undefined : `exit status ${r.exitCode}: ${r.output}`;

export function smokeSteps(): SmokeStep[] {
  let original = "";
  const dir = `/sys/kernel/livepatch/${SAMPLE_NAME}`;
  return [
    {
      what: "the running kernel's command line",
      command: "cat /proc/cmdline",
      check: (r) => {
        original = r.output.trim();
        return original && !original.includes(SAMPLE_TEXT) ? exit0(r) : `unexpected: ${r.output}`;
      },
    },
    { what: "load the livepatch module", command: "insmod livepatch-sample.ko", check: exit0 },
    { what: "wait for the patch transition", command: waitTransition(SAMPLE_NAME), check: exit0 },
    {
      what: "the patch is enabled",
      command: `cat ${dir}/enabled ${dir}/transition`,
      check: (r) =>
        r.output.split(/\s+/).slice(0, 2).join(" ") === "1 0" ? undefined : `enabled/transition: ${r.output}`,
    },
    {
      what: "/proc/cmdline now comes from the new function",
      command: "cat /proc/cmdline",
      check: (r) =>
        r.output.trim() === SAMPLE_TEXT ? undefined : `expected '${SAMPLE_TEXT}', got '${r.output.trim()}'`,
    },
    { what: "disable the patch", command: `echo 0 > ${dir}/enabled`, check: exit0 },
    { what: "wait for the unpatch transition", command: waitTransition(SAMPLE_NAME), check: exit0 },
    { what: "unload the module", command: `rmmod ${SAMPLE_NAME}`, check: exit0 },
    {
      what: "/proc/cmdline is the original again",
      command: "cat /proc/cmdline",
      check: (r) =>
        r.output.trim() === original ? undefined : `expected '${original}', got '${r.output.trim()}'`,
    },
    {
      what: "no patch is left",
      command: "ls /sys/kernel/livepatch; grep -c livepatch /proc/modules || true",
      check: (r) => (r.output.trim() === "0" ? undefined : `left over: ${r.output}`),
    },
  ];
}

/** Failures of a smoke run, one message per failed step, plus any kernel warnings. */
export function checkSmoke(steps: readonly SmokeStep[], result: GuestResult): string[] {
  const failures: string[] = [];
  steps.forEach((s, i) => {
    const r = result.commands[i];
    if (!r) failures.push(`${s.what}: no result`);
    else {
      const f = s.check?.(r);
      if (f) failures.push(`${s.what} (${s.command}): ${f}`);
    }
  });
  if (/Call Trace|WARNING:/.test(result.kernelLog))
    failures.push("the kernel log has a warning or a Call Trace");
  return failures;
}
