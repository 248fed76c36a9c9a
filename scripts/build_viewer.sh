#!/usr/bin/env bash
# Rebuild the viewer component's bundle (ui/viewer/build, committed) from ui/viewer/frontend:
# installs the exact versions in package-lock.json (npm ci), type-checks, bundles with esbuild
# and records the sources' hash in ui/viewer/build/build-info.json (tests/test_viewer.py checks
# it). Needs Node 18+ and npm; running the app does not.
#   scripts/build_viewer.sh            rebuild into ui/viewer/build
#   scripts/build_viewer.sh --outdir D build elsewhere (e.g. to compare with the committed one)
set -euo pipefail
cd "$(dirname "$0")/../ui/viewer/frontend"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npx tsc --noEmit -p .
node build.mjs "$@"
