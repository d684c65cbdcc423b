#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/scripts/setup.sh"
VENV=${MMCAM_HOME:-$HOME/.cache/mmcam}/venv
cd "$REPO"
echo "[mmcam] running the tests"
# pytest exits 5 when it collects no test: that is a failure here too (any non-zero exit is).
exec "$VENV/bin/python" -m pytest "$@"
