#!/usr/bin/env bash
# The main job on the built-in lab: install what is needed, build the lab kernel, and patch
# it live while it runs (then roll the patch back). Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
npm run build
node dist/src/cli/kpatch-lab.js setup
exec node dist/src/cli/kpatch-lab.js demo
