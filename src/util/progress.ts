/**
 * Progress display for long steps. On a terminal one status line is redrawn in place; in a
 * log (CI, a pipe) a line is printed when a step starts and ends, and at most every 15 s
 * while it runs, so logs stay short but show that work goes on.
 */
export interface ProgressOptions {
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  quiet?: boolean;
  /** Force the terminal (redraw) or log style; default: the stream's isTTY. */
  tty?: boolean;
}

export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

export class Progress {
  private readonly out: NodeJS.WritableStream;
  private readonly tty: boolean;
  private readonly quiet: boolean;
  private step = "";
  private stepStart = 0;
  private lastLog = 0;
  private drawn = false;
  readonly timings: Record<string, number> = {};

  constructor(options: ProgressOptions = {}) {
    this.out = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean((this.out as NodeJS.WriteStream).isTTY);
    this.quiet = options.quiet ?? false;
  }

  /** Start a named step (ends the previous one). */
  begin(step: string, detail = ""): void {
    if (this.step) this.end();
    this.step = step;
    this.stepStart = performance.now();
    this.lastLog = this.stepStart;
    if (this.quiet) return;
    if (this.tty) this.redraw(detail);
    else this.out.write(`[${step}] ${detail || "..."}\n`);
  }

  /** Report progress inside the current step; `fraction` in [0,1] when known. */
  update(detail: string, fraction?: number): void {
    if (this.quiet || !this.step) return;
    const pct = fraction === undefined ? "" : ` (${Math.min(99, Math.floor(fraction * 100))}%)`;
    if (this.tty) {
      this.redraw(`${detail}${pct}`);
      return;
    }
    const now = performance.now();
    if (now - this.lastLog >= 15000) {
      this.lastLog = now;
      this.out.write(`[${this.step}] ${detail}${pct} ${formatDuration(now - this.stepStart)}\n`);
    }
  }

  /** End the current step, recording its time. */
  end(detail = "done"): void {
    if (!this.step) return;
    const ms = performance.now() - this.stepStart;
    this.timings[this.step] = (this.timings[this.step] ?? 0) + ms;
    if (!this.quiet) {
      if (this.tty && this.drawn) this.out.write("\r\x1b[K");
      this.out.write(`[${this.step}] ${detail} in ${formatDuration(ms)}\n`);
    }
    this.drawn = false;
    this.step = "";
  }

  /** A line of its own (a message) that does not disturb the status line. */
  note(message: string): void {
    if (this.quiet) return;
    if (this.tty && this.drawn) this.out.write("\r\x1b[K");
    this.out.write(`${message}\n`);
    this.drawn = false;
  }

  private redraw(detail: string): void {
    const elapsed = formatDuration(performance.now() - this.stepStart);
    const cols = (this.out as NodeJS.WriteStream).columns ?? 100;
    const line = `[${this.step}] ${detail} ${elapsed}`.slice(0, cols - 1);
    this.out.write(`\r\x1b[K${line}`);
    this.drawn = true;
  }
}
