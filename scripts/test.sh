#!/usr/bin/env bash
# Everything the tests need, then every test. Safe to run on a fresh Debian 12 machine as
# root (it installs packages and builds the lab kernel, ~10 min the first time) and fast when
# the lab is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
npm run build
npm run lint
# What the tests need beyond kpatch-lab setup's packages: one list (a command, or a file, and
# the Debian package that has it), one apt-get install of those missing.
#   pahole            kpatch-build --kernel-release (test/kpatch-build-distro) prepares a tree with
#                     Debian's config, whose BTF options depend on pahole: without it olddefconfig
#                     would drop them (refused). The first run prepares the 6.12.117 and 6.12.115
#                     trees (~3 min each) and caches them.
#   systemd-analyze   checks the kpatch units (systemd is installed, never booted).
#   lintian           checks the packages kpatch package builds (test/kpatch-package).
#   debootstrap       builds the Debian 12 guest's root file system (test/lab-debian,
#                     test/fleet-apt; ~1 min with the mirror reachable, cached);
#   apt-ftparchive    makes those tests' apt repository.
#   sysctl            the kernel's livepatch selftests (test/livepatch-selftests) run this
#                     machine's bash, kmod, coreutils, getconf, diff and procps' sysctl in the
#                     guest; procps is not in a minimal image.
#   clang             the differ's clang cases (test/diff-corpus: a clang-built kernel's objects).
NEEDED=(
  "pahole dwarves"
  "systemd-analyze systemd"
  "lintian lintian"
  "debootstrap debootstrap"
  "apt-ftparchive apt-utils"
  "/usr/sbin/sysctl procps"
  "clang clang"
)
missing=()
for entry in "${NEEDED[@]}"; do
  read -r program package <<<"$entry"
  command -v "$program" >/dev/null || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
fi

# The set-up steps, in two chains at once: the lab kernel's build (~10 min of both cores the
# first time) beside the downloads, unpacks and debootstraps, which wait mostly on the network
# and the disk. What they share is guarded: host apt and dpkg (each step's package install
# waits for the other's locks: DPkg::Lock::Timeout, src/debian/apt-update.ts for the lists),
# the cache's entries (each written complete or absent, each step its own), the private trixie
# apt state (one step). Each step's lines come with its name in front; a failed step fails the
# command, named at the end with its log.
SETUP_LOGS=$(mktemp -d -t kpatch-ts-setup.XXXXXX)
lab() { node dist/src/cli/kpatch-lab.js "$@"; }
# step NAME COMMAND...: runs it, its output prefixed with [NAME] (whole in $SETUP_LOGS/NAME.log).
step() {
  local name=$1 started=$SECONDS
  shift
  set +e
  "$@" 2>&1 | tee "$SETUP_LOGS/$name.log" | sed -u "s/^/[$name] /"
  local rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "[setup] $name FAILED (exit $rc) after $((SECONDS - started)) s"
    echo "$name" >>"$SETUP_LOGS/failed"
    return 1
  fi
  echo "[setup] $name ok in $((SECONDS - started)) s"
}
lab_chain() {
  step lab lab setup
}
distro_chain() {
  # Debian's stock 6.12 kernel for test/lab-distro (downloads ~125 MB of packages once, no
  # build), and its source unpacked (~1 min once), which the livepatch selftests run from.
  step distro-6.12 lab setup --distro 6.12 --source &&
    # Debian 12's other kernel, stock 6.1 (test/lab-distro's 6.1 cases, the livepatch selftests
    # on it): its packages (~110 MB once), the sample module built against its headers, its
    # source unpacked, ~2.5 min.
    step distro-6.1 lab setup --distro 6.1 --source &&
    step debian-12 lab setup --distro 6.12 --debian &&
    # Debian 13's stock 6.12 and a Debian 13 root file system for it (test/fleet-apt-trixie:
    # apt delivery under systemd with trixie's nodejs; the fixture modules built by its gcc 14
    # in a trixie build root): cold ~5 min and ~1 GB (build root 141 s, packages, debootstrap).
    step trixie lab setup --distro 6.12 --suite trixie --debian --source
}
# Each chain its own process group, so that an interrupted run stops both with their children.
set -m
lab_chain &
lab_pid=$!
distro_chain &
distro_pid=$!
set +m
trap 'kill -TERM -- -$lab_pid -$distro_pid 2>/dev/null; exit 130' INT TERM HUP
setup_ok=true
wait "$lab_pid" || setup_ok=false
wait "$distro_pid" || setup_ok=false
trap - INT TERM HUP
if [ "$setup_ok" != true ]; then
  failed=$(paste -sd ' ' "$SETUP_LOGS/failed" 2>/dev/null || true)
  echo "test.sh: error: set-up failed: ${failed:-a chain ended early} (logs: $SETUP_LOGS)" >&2
  exit 1
fi
rm -rf "$SETUP_LOGS"
# Every *.test.js file, each its own node --test, two at a time, longest first; some alone
# (scripts/run-tests.mjs says which and why; KPATCH_TEST_WORKERS=1 for one at a time).
exec node scripts/run-tests.mjs
