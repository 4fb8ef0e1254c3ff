/**
 * A directory served over HTTP from this machine (python3 -m http.server on a free port the
 * kernel picks), for the lab guest on QEMU's user network, where this machine is 10.0.2.2.
 */
import { spawn } from "node:child_process";

export interface HttpServer {
  port: number;
  /** The directory's URL as the lab guest sees it. */
  guestUrl: string;
  /** Every request line the server logged (e.g. 'GET /dists/... HTTP/1.1" 200'). */
  requests: string[];
  close(): void;
}

export function serveDirectory(dir: string): Promise<HttpServer> {
  const child = spawn("python3", ["-u", "-m", "http.server", "--bind", "0.0.0.0", "--directory", dir, "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const requests: string[] = [];
  child.stderr.setEncoding("utf8").on("data", (d: string) => requests.push(...d.split("\n").filter(Boolean)));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`python3 -m http.server did not say its port: ${out}`));
    }, 10_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const port = / port (\d+) /.exec(out)?.[1];
      if (!port) return;
      clearTimeout(timer);
      resolve({
        port: Number(port),
        guestUrl: `http://10.0.2.2:${port}`,
        requests,
        close: () => child.kill(),
      });
    });
  });
}
