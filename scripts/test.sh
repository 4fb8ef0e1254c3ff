#!/usr/bin/env bash
# Everything the tests need, then every test. Safe to run on a fresh Debian 12 machine as
# root (it installs packages and builds the lab kernel, ~10 min the first time) and fast when
# the lab is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
npm run build
npm run lint
node dist/src/cli/kpatch-lab.js setup
# Debian's stock 6.12 kernel for test/lab-distro (downloads ~125 MB of packages once, no build).
node dist/src/cli/kpatch-lab.js setup --distro 6.12
# kpatch-build --kernel-release (test/kpatch-build-distro) prepares a tree with Debian's config,
# whose BTF options depend on pahole: without dwarves, olddefconfig would drop them (refused).
# The first run prepares the 6.12.117 and 6.12.115 trees (~3 min each) and caches them.
if ! command -v pahole >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends dwarves
fi
# systemd-analyze checks the kpatch units (systemd is installed, never booted).
if ! command -v systemd-analyze >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends systemd
fi
# lintian checks the packages kpatch package builds (test/kpatch-package).
if ! command -v lintian >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends lintian
fi
# The Debian 12 guest (test/lab-debian, test/fleet-apt): debootstrap builds its root file system
# (~1 min with the mirror reachable, cached), apt-ftparchive makes the tests' apt repository.
if ! command -v debootstrap >/dev/null || ! command -v apt-ftparchive >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends debootstrap apt-utils
fi
# The kernel's livepatch selftests (test/livepatch-selftests) run this machine's bash, kmod,
# coreutils, getconf, diff and procps' sysctl in the guest; procps is not in a minimal image.
if [ ! -x /usr/sbin/sysctl ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends procps
fi
node dist/src/cli/kpatch-lab.js setup --distro 6.12 --debian
# Only *.test.js: dist/test also holds helpers (fixture harnesses) that are not tests.
exec node --test --test-concurrency=1 $(find dist/src dist/test -name "*.test.js" | sort)
