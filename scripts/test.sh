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
# Debian's stock 6.12 kernel for test/lab-distro (downloads ~125 MB of packages once, no build),
# and its source unpacked (~1 min once), which the livepatch selftests run from.
node dist/src/cli/kpatch-lab.js setup --distro 6.12 --source
# And Debian 12's other kernel, stock 6.1 (test/lab-distro's 6.1 cases, the livepatch selftests on
# it): its packages (~110 MB once), the sample module built against its headers, its source
# unpacked, ~2.5 min.
node dist/src/cli/kpatch-lab.js setup --distro 6.1 --source
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
node dist/src/cli/kpatch-lab.js setup --distro 6.12 --debian
# Debian 13's stock 6.12 and a Debian 13 root file system for it (test/fleet-apt-trixie: apt
# delivery under systemd with trixie's nodejs; the fixture modules built by its gcc 14 in a
# trixie build root): cold ~5 min and ~1 GB (build root 141 s, packages, debootstrap ~2 min).
node dist/src/cli/kpatch-lab.js setup --distro 6.12 --suite trixie --debian --source
# Every *.test.js file, each its own node --test, two at a time, longest first; some alone
# (scripts/run-tests.mjs says which and why; KPATCH_TEST_WORKERS=1 for one at a time).
exec node scripts/run-tests.mjs
