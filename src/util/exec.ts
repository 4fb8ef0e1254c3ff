/**
 * Running other programs: gcc, make, readelf, qemu. Library code gets a typed error
 * (EXEC_FAILED / EXEC_NOT_FOUND) naming the command and carrying its output tail.
 */
import { type SpawnOptions, spawn } from "node:child_process";
import { KpatchError } from "./errors.js";

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called for every complete line of stdout and stderr, as it arrives. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Kill the process after this many milliseconds (the result then has timedOut set). */
  timeoutMs?: number;
  input?: string | Uint8Array;
  /** Keep at most this many bytes of each stream in the result (the tail). Default 8 MiB. */
  maxBuffer?: number;
  /** Aborting it sends the process SIGTERM (the result then has its signal, nothing is thrown). */
  signal?: AbortSignal;
  /**
   * Run it in a process group of its own, and stop the whole group (abort, timeout): a shell
   * command's compiler goes with the shell, and a terminal's Ctrl-C reaches only us.
   */
  processGroup?: boolean;
}

/** What a Runner takes besides ExecOptions. */
export interface RunOptions extends ExecOptions {
  /**
   * Host directories the command reads or writes besides the cache and $TMPDIR (a runner that
   * confines commands, a build root's chroot, must show them at the same paths).
   */
  paths?: readonly string[];
}

/** How a tree's commands run: `exec` on this machine, or inside a build root. */
export type Runner = (cmd: string, args: readonly string[], options?: RunOptions) => Promise<ExecResult>;

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

/** Run a program; never throws for a non-zero exit (see execCheck), only when it cannot start. */
export function exec(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const started = performance.now();
  const max = options.maxBuffer ?? 8 << 20;
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: options.processGroup ?? false,
    };
    const child = spawn(cmd, args, spawnOptions);
    const stop = (sig: NodeJS.Signals) => {
      try {
        if (options.processGroup && child.pid) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const onAbort = () => stop("SIGTERM");
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    const out = { stdout: "", stderr: "" };
    const partial = { stdout: "", stderr: "" };
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            stop("SIGKILL");
          }, options.timeoutMs);
    const take = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      out[stream] += text;
      if (out[stream].length > max) out[stream] = out[stream].slice(-max);
      if (options.onLine) {
        const lines = (partial[stream] + text).split("\n");
        partial[stream] = lines.pop() ?? "";
        for (const line of lines) options.onLine(line, stream);
      }
    };
    child.stdout?.on("data", take("stdout"));
    child.stderr?.on("data", take("stderr"));
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      const code = err.code === "ENOENT" ? "EXEC_NOT_FOUND" : "EXEC_FAILED";
      reject(new KpatchError(code, `Cannot run ${cmd}: ${err.message}`, {}, { cause: err }));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      for (const stream of ["stdout", "stderr"] as const) {
        if (partial[stream] && options.onLine) options.onLine(partial[stream], stream);
      }
      resolve({ code, signal, ...out, timedOut, durationMs: performance.now() - started });
    });
    if (options.input !== undefined && child.stdin) {
      child.stdin.on("error", () => {});
      child.stdin.end(options.input);
    }
  });
}

/** Run a program and throw EXEC_FAILED (with the tail of its output) unless it exits 0. */
export async function execCheck(
  cmd: string,
  args: readonly string[],
  options: RunOptions & { what?: string; run?: Runner } = {},
): Promise<ExecResult> {
  const r = await (options.run ?? exec)(cmd, args, options);
  if (r.code !== 0) {
    const tail = tailLines(`${r.stdout}\n${r.stderr}`, 40);
    const how = r.timedOut ? "timed out" : r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`;
    throw new KpatchError("EXEC_FAILED", `${options.what ?? `${cmd} ${args.join(" ")}`} ${how}:\n${tail}`);
  }
  return r;
}

/**
 * What a failed compiler or make run said that matters: its error and warning lines (the last
 * `n`), or the tail of its output when none matches (a crash, a missing tool).
 */
export function buildErrors(r: Pick<ExecResult, "stdout" | "stderr">, n = 20): string {
  const all = `${r.stdout}\n${r.stderr}`;
  const errors = all
    .split("\n")
    .filter((l) => /error|warning:/i.test(l))
    .join("\n");
  return tailLines(errors || all, n);
}

/** `s` as one word for sh: unchanged when it has nothing sh would act on, else single-quoted. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_/.,:+=@%-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

export function tailLines(text: string, n: number): string {
  const lines = text.trimEnd().split("\n");
  return lines.slice(-n).join("\n");
}
