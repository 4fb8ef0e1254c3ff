/**
 * The kpatch command's usage texts: the overview and one man-page style text per verb.
 */
import { libDir } from "../manage/state-dir.js";

export const USAGE = `Usage: kpatch <command> [options] [arguments]

Manage live patch modules on the running Linux kernel: load them (the kernel's
livepatch core then redirects the patched functions), unload them, list them,
and install them so they load at every boot.

Commands:
  load MODULE.ko... | --all     load patch modules and wait for their transition
  unload MODULE... | --all      disable patches, wait, and remove their modules
  list [--json]                 loaded patches and installed ones per kernel
  info MODULE [--json]          what a patch module changes, and its modinfo
  install [-k KVER] MODULE.ko   keep a module under ${libDir()}/<KVER>/ and
                                load it at boot
  uninstall [-k KVER] MODULE... | --all
                                remove installed modules
  signal                        signal the tasks that block a transition
  boot [--confirm]              load the installed patches at boot (systemd unit,
                                init script); --confirm: the system runs well
  unblock MODULE... | --all     let patches the crash-loop guard blocked load at
                                boot again
  package MODULE.ko [options]   a Debian package of a patch module, for apt
  version                       print the version
  help [COMMAND]                this text, or a command's

Run 'kpatch COMMAND --help' for a command's options and details.

Options for every command:
  -h, --help     the command's help
  -d, --debug    show the program's stack on errors

Exit status:
  0  success
  1  failure or refusal (the message says why; nothing was changed by a
     refused command)
  2  usage error
  3  a patch transition stalled and was backed out; the report names the
     tasks that blocked it and the patched functions they sit in

Environment:
  KPATCH_LIB_DIR   where installed patches live (default /var/lib/kpatch)

kpatch needs root for everything but list, info, package, version and help, and a
kernel with livepatch support (CONFIG_LIVEPATCH: /sys/kernel/livepatch).
`;

const TRANSITION_OPTIONS = `  -t, --timeout SEC        give up on a transition after SEC seconds (default 60);
                           the change is then backed out and kpatch exits 3
  --signal-after SEC       signal the tasks that block the transition once after
                           SEC seconds (default 5): user tasks get SIGSTOP and
                           SIGCONT, kernel threads are woken by the kernel itself
  --json                   print the result as JSON on stdout`;

export const HELP: Record<string, string> = {
  load: `Usage: kpatch load [options] MODULE.ko...
       kpatch load [options] --all

Load live patch modules into the running kernel and wait until every task runs
the new code.

For each module: check it is a livepatch module (modinfo livepatch=Y) built for
the running kernel (its vermagic names \`uname -r\`), run the run-pre check,
insmod it, then wait for
/sys/kernel/livepatch/<patch>/transition to read 0. The kernel switches each
task once none of the patched functions is on its stack; a task that sits in
one (a kernel thread's loop, a long sleep) keeps the transition from finishing.
kpatch then signals such tasks, keeps waiting up to the timeout and, if the
transition still has not finished, reports each blocking task (pid, name, the
patched function it sits in and its stack), disables the patch, waits for the
reverse transition and removes the module: the system is as before.

The run-pre check, before insmod: every function the module replaces must be
in /proc/kallsyms where the livepatch core will look; and when the module
carries kpatch-build's run-pre record (section .kpatch.runpre: each replaced
function's original code, and each helper of its object that the new code
calls by sympos), that code is compared with the running kernel's
text through /proc/kcore, allowing only what the kernel rewrites (ftrace,
jump labels, static calls, alternatives, lock prefixes, return and retpoline
thunks, IBT sealing). Without /proc/kcore (not root, no CONFIG_PROC_KCORE) or
without a record, it says so and goes on.

On a kernel that enforces module signatures (sig_enforce: CONFIG_MODULE_SIG_FORCE
or module.sig_enforce=1) an unsigned module is refused before insmod; sign it
with kpatch-build --sign KEY CERT (kpatch info says whether a module is signed).

A patch that is loaded but disabled is enabled again instead.

Options:
  --all                    load every module installed for the running kernel
                           (see 'kpatch install'); patches blocked by the
                           crash-loop guard are skipped
  --skip-run-pre           EXPERTS: load even when the code the module replaces
                           is not what it was built against (printed as a
                           warning); the patch may crash the kernel
${TRANSITION_OPTIONS}

Exit status: 0 loaded; 1 refused or failed; 3 the transition stalled and the
patch was backed out; 4 the run-pre check refused the module (nothing loaded).

Examples:
  kpatch load livepatch-fix.ko
  kpatch load --timeout 120 livepatch-fix.ko
`,
  unload: `Usage: kpatch unload [options] MODULE...
       kpatch unload [options] --all

Disable live patches, wait for the transition back to the original functions,
and remove their modules. MODULE is a patch name (as 'kpatch list' shows it), a
module file name, or the path of the .ko.

If the transition stalls (a task sits in a function of the patch), kpatch
signals the blocking tasks, waits up to the timeout, reports them and enables
the patch again: it stays loaded and the system is as before.

A module whose patch was replaced by a cumulative (atomic replace) patch is
just removed.

Options:
  --all                    unload every loaded patch, newest first
${TRANSITION_OPTIONS}

Exit status: 0 unloaded; 1 failed (e.g. not loaded); 3 the transition stalled
and the patch was enabled again.
`,
  list: `Usage: kpatch list [--json]

List the patches the running kernel has (name, enabled, in transition, atomic
replace, and per target object - vmlinux or a module - the patched functions),
and the modules installed for boot-time loading, per kernel release, with any
block by the crash-loop guard.

Options:
  --json    print {kernel, livepatch, loaded: [...], installed: [...]}

Needs no root.
`,
  info: `Usage: kpatch info [--json] MODULE

Show what a patch module changes, read from the module itself (its klp_patch
metadata: target objects, patched functions, sympos, callbacks, atomic replace)
and its modinfo (vermagic, license, description, ...), and whether it is loaded
or installed. MODULE is the path of a .ko, or the name of an installed patch.
For a loaded patch with no file, the kernel's view is shown.

Options:
  --json    print the same as JSON

Needs no root.
`,
  install: `Usage: kpatch install [-k KVER] MODULE.ko

Copy a patch module to ${libDir()}/<KVER>/ so that it is loaded at every
boot of kernel KVER (default: the running kernel, \`uname -r\`). The module is
checked first: a livepatch module whose vermagic names KVER. It is written
beside its place, read back, then renamed into place: a failed write leaves the
previous installation as it was. A module of the same name installed before is
replaced (a patch the crash-loop guard blocked stays blocked: 'kpatch unblock').
When systemd runs the system, kpatch.service and kpatch-confirm.timer are
enabled. Installing does not load the module: run 'kpatch load' for that.

Options:
  -k, --kernel-version KVER   install for kernel release KVER
`,
  uninstall: `Usage: kpatch uninstall [-k KVER] MODULE...
       kpatch uninstall [-k KVER] --all

Remove installed patch modules for kernel KVER (default: the running kernel),
and what the crash-loop guard knew about them. A loaded patch stays loaded: run
'kpatch unload' for that.

Options:
  -k, --kernel-version KVER   uninstall from kernel release KVER
  --all                       uninstall every module of that kernel
`,
  signal: `Usage: kpatch signal

Signal the tasks that block the patch transition in progress: each user task
whose patch state is not yet the transition's target gets SIGSTOP and SIGCONT,
which makes it leave the kernel and switch. Kernel threads cannot be signalled
from user space; the kernel wakes them itself every 15 s of a transition. The
blocking tasks are listed. Exit status 0 also when no transition runs.
`,
  boot: `Usage: kpatch boot [--confirm] [--json]

Load every patch installed for the running kernel, at boot: this is what the
systemd unit (kpatch.service) and the init script (/etc/init.d/kpatch) run.
Nothing is loaded when the kernel command line has kpatch.enable=0.

The crash-loop guard: before loading a patch, kpatch records durably that this
boot loaded it. A clean shutdown (the unit's stop, the init script's stop) or
'kpatch boot --confirm' clears the record. A record left by an earlier boot
means that boot crashed (or lost power) after loading the patch: the patch is
blocked, and not loaded at boot until the administrator runs 'kpatch unblock'
(also when the boot after the crash ran with kpatch.enable=0). Patches load in
natural file-name order (fix-v9 before fix-v10); each loads on its own: one
failure (a broken or vanished module file) does not stop the others.

Options:
  --confirm     the patches this boot loaded run well: clear this boot's
                records (run at clean shutdown, or by a timer some minutes
                after boot); an earlier boot's records stay
${TRANSITION_OPTIONS}

Exit status: 0 all loaded (or skipped); 1 a patch failed to load; 3 a
transition stalled and that patch was backed out.
`,
  unblock: `Usage: kpatch unblock [-k KVER] MODULE...
       kpatch unblock [-k KVER] --all

Let patches that the crash-loop guard blocked load at boot again (see 'kpatch
boot'), after the administrator has looked into the crash.

Options:
  -k, --kernel-version KVER   for kernel release KVER (default: running)
  --all                       every blocked patch of that kernel
`,
  package: `Usage: kpatch package [options] MODULE.ko

Wrap a built live patch module in a Debian package (dpkg-deb), so that apt
delivers it to every machine running its kernel. Each kernel has one patch
package, whose versions are cumulative patch levels:
  kpatch-patch-<KVER>_<level>_amd64.deb
Build each level with atomic replace (the default; -R modules are refused),
holding every fix so far: an upgrade replaces the patch live, a removal goes
back to the unpatched kernel. It ships the module under
/usr/lib/kpatch-ts/patches/<KVER>/ and depends on linux-image-<KVER> (or
linux-image-<KVER>-unsigned) and kpatch-ts. Its postinst runs 'kpatch install
-k KVER' and, when the machine runs KVER, 'kpatch load' (undoing the install if
the load fails); its prerm (on removal) unloads and uninstalls it. The scripts
act live only on KVER and only on their own module (its build id): another
kernel's package, or a module of the same name that is not theirs, is left
alone. Give each level's module a name of its own (kpatch-build -n fix_2) for a
replace without a gap: a module name loads once, so the same name is unloaded
before its next build loads. Sign the module with kpatch-build --sign first.

Options:
  -k, --kernel-version KVER   the kernel it patches (default: its vermagic's;
                              it must match)
  -V, --package-version VER   the package's Debian version (default 1)
  --image-version VER         depend on that build of the kernel's image package
                              only (its Debian version, e.g. 6.12.117-1~deb12u1;
                              default: any build of linux-image-<KVER>)
  --maintainer 'Name <email>' the Maintainer field (default: DEBFULLNAME and
                              DEBEMAIL, else kpatch-ts <root@localhost>)
  -o, --output DIR            where the .deb is written (default .)
`,
  version: `Usage: kpatch version

Print kpatch-ts's version.
`,
};
