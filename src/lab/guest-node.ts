/**
 * Running Node.js programs (the kpatch CLI) inside the lab guest. The guest has only busybox;
 * with `shareHost` this machine's / is mounted read-only at /host, and a wrapper script copies
 * the host's node, its dynamic loader and libraries, and this checkout's compiled code into the
 * guest's tmpfs (/tmp/kplab-node) on first use, then runs node through that loader. Copying
 * once per boot makes each later start several times faster than running from 9p.
 *
 * Node needs CONFIG_EPOLL, CONFIG_EVENTFD and CONFIG_ADVISE_SYSCALLS (libuv's event loop, V8's
 * madvise), which tinyconfig leaves out: the lab config turns them on.
 */
import { readFileSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KpatchError } from "../util/errors.js";
import { shellQuote } from "../util/exec.js";
import { hostProgram } from "./host-programs.js";
import type { GuestFile } from "./initramfs.js";
import type { Lab } from "./setup.js";

/** Where the host's / is in the guest (see lab/initramfs/init). */
export const HOST_MOUNT = "/host";

/** Where the wrapper copies node and the code in the guest. */
const GUEST_NODE_DIR = "/tmp/kplab-node";

/** This checkout: package.json and the compiled dist/src. */
const CHECKOUT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The guest-side path of the kpatch wrapper once kpatchInGuest().setup has run. */
const GUEST_KPATCH = "/usr/sbin/kpatch";

/** Kernel options Node.js needs that tinyconfig leaves out. */
const NODE_KERNEL_OPTIONS = ["CONFIG_EPOLL", "CONFIG_EVENTFD", "CONFIG_ADVISE_SYSCALLS"] as const;

export interface HostNode {
  /** Real host paths of node and its loader. */
  node: string;
  loader: string;
  /** Each library: the name node asks for (its soname) and the real host path. */
  libraries: { name: string; path: string }[];
}

/** The host's node, loader and libraries (src/lab/host-programs.ts). */
export async function hostNode(): Promise<HostNode> {
  const p = await hostProgram(process.execPath);
  if (!p.loader) {
    throw new KpatchError("LAB_NODE", `Cannot run node in the guest: ldd ${p.path} names no dynamic loader`);
  }
  return { node: p.path, loader: p.loader.path, libraries: p.libraries };
}

/** The options of NODE_KERNEL_OPTIONS that the lab kernel lacks. */
function missingNodeOptions(lab: Pick<Lab, "config">): string[] {
  const config = readFileSync(lab.config, "utf8");
  return NODE_KERNEL_OPTIONS.filter((o) => !new RegExp(`^${o}=y$`, "m").test(config));
}

/**
 * A shell script for the guest that runs `script` (a file of this checkout's dist/) with the
 * host's node, copying everything into the guest's tmpfs on first use.
 */
/** package.json's "dependencies": what dist/ needs at run time from node_modules. */
function runtimeDependencies(): string[] {
  const pkg = JSON.parse(readFileSync(join(CHECKOUT, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  return Object.keys(pkg.dependencies ?? {});
}

async function nodeWrapper(lab: Pick<Lab, "config">, script: string, comment: string): Promise<string> {
  const missing = missingNodeOptions(lab);
  if (missing.length) {
    throw new KpatchError(
      "LAB_NODE",
      `Cannot run node in the lab guest: the lab kernel lacks ${missing.join(", ")} (an old lab: run 'kpatch-lab setup')`,
    );
  }
  const n = await hostNode();
  const h = (p: string) => shellQuote(`${HOST_MOUNT}${p}`);
  const d = GUEST_NODE_DIR;
  const relScript = realpathSync(script).slice(realpathSync(CHECKOUT).length + 1);
  const copy = [
    `rm -rf ${d} && mkdir -p ${d}/lib ${d}/app/dist`,
    `cp ${h(n.loader)} ${d}/ld.so`,
    ...n.libraries.map((l) => `cp ${h(l.path)} ${d}/lib/${shellQuote(l.name)}`),
    `cp ${h(n.node)} ${d}/node`,
    `cp ${h(join(CHECKOUT, "package.json"))} ${d}/app/`,
    `cp -r ${h(join(CHECKOUT, "dist", "src"))} ${d}/app/dist/`,
    // The runtime dependencies (iced-x86: kpatch load's run-pre check decodes instructions).
    `mkdir -p ${d}/app/node_modules`,
    ...runtimeDependencies().map(
      // realpath: a worktree's node_modules may be a symlink to another checkout's, which the
      // guest cannot follow under ${HOST_MOUNT}.
      (p) => `cp -r ${h(realpathSync(join(CHECKOUT, "node_modules", p)))} ${d}/app/node_modules/`,
    ),
    `touch ${d}/.ready`,
  ];
  const run = [`${d}/ld.so`, "--library-path", `${d}/lib`];
  return [
    "#!/bin/sh",
    `# ${comment}`,
    `# The host's node ${basename(n.node)} and this checkout's dist/, copied from ${HOST_MOUNT} into tmpfs once per boot.`,
    `if [ ! -e ${d}/.ready ]; then`,
    `  { ${copy.join(" && ")}; } || { echo "cannot copy node from ${HOST_MOUNT} (is the host shared?)" >&2; exit 127; }`,
    "fi",
    `exec ${run.join(" ")} ${d}/node ${d}/app/${relScript} "$@"`,
    "",
  ].join("\n");
}

/**
 * The kpatch CLI in the guest: a file to pass in `files`, and a first command that installs
 * it as /usr/sbin/kpatch and copies node into tmpfs (as root, so later non-root runs work).
 * The guest needs `shareHost: true`.
 */
export async function kpatchInGuest(
  lab: Pick<Lab, "config">,
): Promise<{ file: GuestFile; setup: string; wrapper: string }> {
  const wrapper = await nodeWrapper(
    lab,
    join(CHECKOUT, "dist", "src", "cli", "kpatch.js"),
    "kpatch (kpatch-ts) in the lab guest",
  );
  return {
    file: { name: "kpatch-wrapper", data: wrapper, mode: 0o755 },
    setup: `mkdir -p /usr/sbin && cp /lab/files/kpatch-wrapper ${GUEST_KPATCH} && chmod 755 ${GUEST_KPATCH} && ${GUEST_KPATCH} version`,
    wrapper,
  };
}
