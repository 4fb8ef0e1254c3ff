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
# Only *.test.js: dist/test also holds helpers (fixture harnesses) that are not tests.
exec node --test --test-concurrency=1 $(find dist/src dist/test -name "*.test.js" | sort)
