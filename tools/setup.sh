#!/usr/bin/env bash
# Idempotent set-up on a bare Debian machine (root) or a developer box:
#   - installs Mesa's software Vulkan driver when wgpu finds no adapter,
#   - creates .venv in the repository root and installs the project with its extras,
#   - installs real TensorFlow.js (npm, tests/tfjs) for the converter's tests when npm exists,
#   - installs Debian's chromium (headless) for the test that renders the HTML conformance report.
# Usage: tools/setup.sh [--no-extras]     (extras = TensorFlow + official converter + pytest + Ray for
#                                          tests/test_ray.py: the [test] extra pulls in [ray])
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="[test]"
[ "${1:-}" = "--no-extras" ] && extras=""
py="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
vpy="$root/.venv/bin/python"
"$vpy" -m pip install -q --upgrade pip >/dev/null
"$vpy" -m pip install -q -e ".${extras}"

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
have_vulkan() {
    "$vpy" - <<'PY' 2>/dev/null
import sys, wgpu
names = [a.info.get("backend_type", "") for a in wgpu.gpu.enumerate_adapters_sync()]
sys.exit(0 if any("Vulkan" in n for n in names) else 1)
PY
}
if ! have_vulkan; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: no Vulkan adapter found; installing mesa-vulkan-drivers" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers >/dev/null
    else
        echo "setup: no Vulkan adapter found and cannot apt-get install mesa-vulkan-drivers (not root)" >&2
    fi
fi
# Real TensorFlow.js for the tests (tests/tfjs: @tensorflow/tfjs 4.22 pinned; its CPU backend in Node, the
# cpu/webgl/webgpu backends in headless Chromium, the wasm backend for tools/bench_tfjs.js).
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Node.js + npm (the tests run real TensorFlow.js)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if command -v npm >/dev/null; then
    (cd tests/tfjs && npm install --no-audit --no-fund --loglevel=error >/dev/null)
else
    echo "setup: npm not found; the converter tests need Node.js + npm (apt-get install nodejs npm)" >&2
fi
# A real headless browser renders the HTML conformance report in tests/test_report_html.py.
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing chromium (the tests render the HTML report in a headless browser)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "setup: chromium not found; the HTML report test needs it (apt-get install chromium)" >&2
    fi
fi
"$vpy" -m wgpu_runtime adapters || true
