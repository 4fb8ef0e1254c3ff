#!/usr/bin/env bash
# The main job on Debian's own kernel: install what is needed, fetch the stock Debian 6.12
# kernel's packages (no kernel build), build a livepatch module for it from a source patch, and
# patch that kernel live in the lab with kpatch load / list / unload. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
npm run build
node dist/src/cli/kpatch-lab.js setup --distro 6.12
exec node dist/src/cli/kpatch-lab.js demo --distro 6.12
