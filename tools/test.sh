#!/usr/bin/env bash
# The test command (README, CI): runs the whole suite in .venv on both adapters.
# Sets up first when .venv is missing. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
[ -x .venv/bin/python ] || tools/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
export TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0
exec .venv/bin/python -m pytest "$@"
