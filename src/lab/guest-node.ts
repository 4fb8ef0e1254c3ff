/**
 * Running Node.js programs (the kpatch CLI) inside the lab guest. The guest has only busybox;
 * with `shareHost` this machine's / is mounted read-only at /host, and a wrapper script copies
 * the host's node, its dynamic loader and libraries, and this checkout's compiled code into the
 * guest's tmpfs (/tmp/kplab-node) on first use, then runs node through that loader. Copying
 * once per boot makes each later start several times faster than running from 9p.
 *
 * The lab kernel is tinyconfig-based: without CONFIG_EPOLL, CONFIG_EVENTFD and
 * CONFIG_ADVISE_SYSCALLS, libuv cannot make its event loop and V8 aborts on madvise. Until the
 * lab config has them, a small preloaded shim provides them in user space (level-triggered
 * epoll over poll(2), eventfd over a pipe, madvise as the no-op advice it is allowed to be).
 * It is built with gcc on the host and used only when the lab's .config lacks those options.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KpatchError } from "../util/errors.js";
import { execCheck } from "../util/exec.js";
import type { GuestFile } from "./initramfs.js";
import { cacheRoot } from "./paths.js";
import type { Lab } from "./setup.js";

/** Where the host's / is in the guest (see lab/initramfs/init). */
export const HOST_MOUNT = "/host";

/** Where the wrapper copies node and the code in the guest. */
export const GUEST_NODE_DIR = "/tmp/kplab-node";

/** This checkout: package.json and the compiled dist/src. */
const CHECKOUT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The guest-side path of the kpatch wrapper once kpatchInGuest().setup has run. */
export const GUEST_KPATCH = "/usr/sbin/kpatch";

/** Kernel options Node.js needs that tinyconfig leaves out. */
export const NODE_KERNEL_OPTIONS = ["CONFIG_EPOLL", "CONFIG_EVENTFD", "CONFIG_ADVISE_SYSCALLS"] as const;

export interface HostNode {
  /** Real host paths of node and its loader. */
  node: string;
  loader: string;
  /** Each library: the name node asks for (its soname) and the real host path. */
  libraries: { name: string; path: string }[];
}

let hostNodeCache: HostNode | undefined;

/** The host's node, loader and libraries, from `ldd` (real paths, symlinks resolved). */
export async function hostNode(): Promise<HostNode> {
  if (hostNodeCache) return hostNodeCache;
  const node = realpathSync(process.execPath);
  const r = await execCheck("ldd", [node], { what: `ldd ${node}` });
  let loader: string | undefined;
  const libraries: { name: string; path: string }[] = [];
  for (const line of r.stdout.split("\n")) {
    const lib = /^\s*(\S+)\s+=>\s+(\/\S+)/.exec(line);
    const interp = /^\s*(\/\S*ld-linux\S*)\s+\(/.exec(line)?.[1];
    if (interp) loader = realpathSync(interp);
    else if (lib) libraries.push({ name: lib[1]!, path: realpathSync(lib[2]!) });
  }
  if (!loader) {
    throw new KpatchError("LAB_NODE", `Cannot run node in the guest: ldd ${node} names no dynamic loader`);
  }
  hostNodeCache = { node, loader, libraries };
  return hostNodeCache;
}

/** The options of NODE_KERNEL_OPTIONS that the lab kernel lacks. */
export function missingNodeOptions(lab: Pick<Lab, "buildDir">): string[] {
  const config = readFileSync(join(lab.buildDir, ".config"), "utf8");
  return NODE_KERNEL_OPTIONS.filter((o) => !new RegExp(`^${o}=y$`, "m").test(config));
}

/** Builds (once, cached by source) the user-space shim; returns its host path. */
export async function buildNodeShim(): Promise<string> {
  const hash = createHash("sha256").update(SHIM_SOURCE).digest("hex").slice(0, 12);
  const dir = join(cacheRoot(), "guest-node", hash);
  const so = join(dir, "libkplab-shim.so");
  if (existsSync(so)) return so;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, "kplab-shim.c");
  writeFileSync(src, SHIM_SOURCE);
  const tmp = `${so}.tmp-${process.pid}`;
  try {
    await execCheck("gcc", ["-O2", "-shared", "-fPIC", "-Wall", "-o", tmp, src, "-lpthread"], {
      what: "gcc (the guest's node shim)",
    });
    renameSync(tmp, so);
  } finally {
    rmSync(tmp, { force: true });
  }
  return so;
}

/**
 * A shell script for the guest that runs `script` (a file of this checkout's dist/) with the
 * host's node, copying everything into the guest's tmpfs on first use.
 */
export async function nodeWrapper(
  lab: Pick<Lab, "buildDir">,
  script: string,
  comment: string,
): Promise<string> {
  const n = await hostNode();
  const shim = missingNodeOptions(lab).length ? await buildNodeShim() : undefined;
  const h = (p: string) => shellQuote(`${HOST_MOUNT}${p}`);
  const d = GUEST_NODE_DIR;
  const relScript = realpathSync(script).slice(realpathSync(CHECKOUT).length + 1);
  const copy = [
    `rm -rf ${d} && mkdir -p ${d}/lib ${d}/app/dist`,
    `cp ${h(n.loader)} ${d}/ld.so`,
    ...n.libraries.map((l) => `cp ${h(l.path)} ${d}/lib/${shellQuote(l.name)}`),
    `cp ${h(n.node)} ${d}/node`,
    ...(shim ? [`cp ${h(shim)} ${d}/shim.so`] : []),
    `cp ${h(join(CHECKOUT, "package.json"))} ${d}/app/`,
    `cp -r ${h(join(CHECKOUT, "dist", "src"))} ${d}/app/dist/`,
    `touch ${d}/.ready`,
  ];
  const run = [`${d}/ld.so`, ...(shim ? ["--preload", `${d}/shim.so`] : []), "--library-path", `${d}/lib`];
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
  lab: Pick<Lab, "buildDir">,
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

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** User-space epoll, eventfd and madvise for a kernel built without them: enough for libuv/V8. */
const SHIM_SOURCE = String.raw`// Generated by kpatch-ts src/lab/guest-node.ts: epoll, eventfd and madvise in user space
// for the lab's tinyconfig kernel, enough for Node.js (libuv, V8). Level-triggered epoll over
// poll(2); eventfd over a pipe reopened read-write through /proc/self/fd; madvise as a no-op.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct watch { int fd; uint32_t events; epoll_data_t data; };
struct ep { int handle; int n, cap; struct watch *w; struct ep *next; };
static struct ep *eps;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct ep *find_ep(int handle)
{
	for (struct ep *e = eps; e; e = e->next)
		if (e->handle == handle)
			return e;
	return NULL;
}

int epoll_create1(int flags)
{
	int fd = open("/dev/null", O_RDONLY | ((flags & EPOLL_CLOEXEC) ? O_CLOEXEC : 0));
	if (fd < 0)
		return -1;
	struct ep *e = calloc(1, sizeof(*e));
	if (!e) { close(fd); errno = ENOMEM; return -1; }
	e->handle = fd;
	pthread_mutex_lock(&lock);
	struct ep *stale = find_ep(fd);   /* a closed epoll fd whose number came back */
	if (stale) { stale->n = 0; stale->handle = -1; }
	e->next = eps;
	eps = e;
	pthread_mutex_unlock(&lock);
	return fd;
}

int epoll_create(int size)
{
	if (size <= 0) { errno = EINVAL; return -1; }
	return epoll_create1(0);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct stat st;
	if (op == EPOLL_CTL_ADD && fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		errno = EPERM;   /* as the kernel's epoll: files are always ready */
		return -1;
	}
	pthread_mutex_lock(&lock);
	struct ep *e = find_ep(epfd);
	int rc = 0, i;
	if (!e) { errno = EBADF; rc = -1; goto out; }
	for (i = 0; i < e->n && e->w[i].fd != fd; i++)
		;
	if (op == EPOLL_CTL_ADD) {
		if (i < e->n) { errno = EEXIST; rc = -1; goto out; }
		if (e->n == e->cap) {
			int cap = e->cap ? 2 * e->cap : 16;
			struct watch *w = realloc(e->w, cap * sizeof(*w));
			if (!w) { errno = ENOMEM; rc = -1; goto out; }
			e->w = w;
			e->cap = cap;
		}
		e->w[e->n].fd = fd;
		e->w[e->n].events = ev->events;
		e->w[e->n].data = ev->data;
		e->n++;
	} else if (i == e->n) {
		errno = ENOENT;
		rc = -1;
	} else if (op == EPOLL_CTL_MOD) {
		e->w[i].events = ev->events;
		e->w[i].data = ev->data;
	} else if (op == EPOLL_CTL_DEL) {
		e->w[i] = e->w[--e->n];
	} else {
		errno = EINVAL;
		rc = -1;
	}
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *sigmask)
{
	if (maxevents <= 0) { errno = EINVAL; return -1; }
	pthread_mutex_lock(&lock);
	struct ep *e = find_ep(epfd);
	if (!e) { pthread_mutex_unlock(&lock); errno = EBADF; return -1; }
	int n = e->n;
	struct pollfd *p = calloc(n ? n : 1, sizeof(*p));
	epoll_data_t *data = calloc(n ? n : 1, sizeof(*data));
	if (!p || !data) { pthread_mutex_unlock(&lock); free(p); free(data); errno = ENOMEM; return -1; }
	for (int i = 0; i < n; i++) {
		p[i].fd = e->w[i].fd;
		p[i].events = e->w[i].events & 0xffff;   /* EPOLLIN.. equal POLLIN..; no ET/ONESHOT */
		data[i] = e->w[i].data;
	}
	pthread_mutex_unlock(&lock);
	int r;
	if (sigmask) {
		struct timespec ts = { timeout / 1000, (timeout % 1000) * 1000000L };
		r = ppoll(p, n, timeout < 0 ? NULL : &ts, sigmask);
	} else {
		r = poll(p, n, timeout);
	}
	int count = 0;
	for (int i = 0; r > 0 && i < n && count < maxevents; i++) {
		if (!p[i].revents || (p[i].revents & POLLNVAL))
			continue;
		events[count].events = p[i].revents;
		events[count].data = data[i];
		count++;
	}
	free(p);
	free(data);
	return r < 0 ? -1 : count;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	return epoll_pwait(epfd, events, maxevents, timeout, NULL);
}

int eventfd(unsigned int initval, int flags)
{
	int pipefd[2];
	char path[64];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pipefd[0]);
	int fd = open(path, O_RDWR | ((flags & EFD_NONBLOCK) ? O_NONBLOCK : 0) | ((flags & EFD_CLOEXEC) ? O_CLOEXEC : 0));
	int saved = errno;
	close(pipefd[0]);
	close(pipefd[1]);
	if (fd < 0) { errno = saved; return -1; }
	if (initval) {
		uint64_t v = initval;
		if (write(fd, &v, sizeof(v)) < 0) { close(fd); return -1; }
	}
	return fd;
}

int madvise(void *addr, size_t length, int advice)
{
	(void)addr;
	(void)length;
	(void)advice;
	return 0;
}
`;
