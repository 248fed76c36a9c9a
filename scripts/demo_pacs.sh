#!/usr/bin/env bash
# Try the PACS features in one command: a local Orthanc (Debian packages orthanc and
# orthanc-dicomweb) on loopback with a throw-away folder and configuration, loaded with the two
# demo studies of the tests (real brain MRI slices: single-frame, multi-frame, JPEG-LS; a CT),
# and the app (`make run`) pointed at it. Ctrl-C stops both and deletes the folder.
#   scripts/demo_pacs.sh            # Orthanc on a free port, app on http://localhost:8501
#   ORTHANC_PORT=8042 scripts/demo_pacs.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v Orthanc >/dev/null 2>&1; then
  echo "error: Orthanc is not installed (Debian: sudo apt-get install orthanc orthanc-dicomweb)" >&2
  exit 2
fi
make -s venv >/dev/null           # the app's virtual environment (as make run does)
dir="$(mktemp -d -t medscan-demo-pacs.XXXXXX)"
orthanc_pid=""
cleanup() {
  if [ -n "$orthanc_pid" ]; then kill "$orthanc_pid" 2>/dev/null || true; wait "$orthanc_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

.venv/bin/python tests/pacs_fixtures.py serve --dir "$dir" --port "${ORTHANC_PORT:-0}" \
  --ready "$dir/ready" &
orthanc_pid=$!
for _ in $(seq 1 150); do
  [ -s "$dir/ready" ] && break
  kill -0 "$orthanc_pid" 2>/dev/null || { echo "error: Orthanc did not start" >&2; exit 2; }
  sleep 0.2
done
[ -s "$dir/ready" ] || { echo "error: Orthanc did not start within 30 s" >&2; exit 2; }

# The demo Orthanc's own throw-away account (tests/pacs_fixtures.py), not a real secret.
export MEDSCAN_DICOMWEB_URL="$(sed -n 1p "$dir/ready")"
export MEDSCAN_DICOMWEB_USER="$(sed -n 2p "$dir/ready")"
export MEDSCAN_DICOMWEB_PASSWORD="$(sed -n 3p "$dir/ready")"
echo "PACS: $MEDSCAN_DICOMWEB_URL — on Analyze, open 'Open from PACS' and search (e.g. modality MR)."
make run
