#!/usr/bin/env bash
# One prepared run on a machine with a real GPU (the project's lent device machine), where nothing
# can be downloaded: wgpu and its needs travel as wheels in .whl/, the Vulkan/GL loaders as .debs in
# .gl/, the test fixtures in .fixtures/ (built here by TensorFlow). Writes results under $OUT.
#   tools/gpu_check.sh [TEST_ADAPTERS]     (default: vulkan)
set -uo pipefail
OUT="${OUT:-/tmp/gpu_check}"; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/wr . >/dev/null || exit 1
export PYTHONPATH=/tmp/wr:/tmp/site PYTHONUNBUFFERED=1
if ! python3 -P -m wgpu_runtime adapters --json > "$OUT/adapters.json" || ! grep -qi nvidia "$OUT/adapters.json"; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    python3 -P -m wgpu_runtime adapters --json > "$OUT/adapters.json"
fi
cat "$OUT/adapters.json"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
adapters="${1:-vulkan}"
for a in ${adapters//,/ }; do
    python3 -P -m wgpu_runtime bench --adapter "$a" --runs 50 --warmup 5 --json > "$OUT/bench_default_$a.json"
    python3 -P -m wgpu_runtime bench .fixtures/mobilenet_v2 --adapter "$a" --runs 50 --warmup 5 --json \
        > "$OUT/bench_mobilenet_v2_$a.json"
    grep -E '"(adapter|first_ms|median_ms|min_ms|p90_ms|pipelines_compiled)"' "$OUT/bench_mobilenet_v2_$a.json"
done
WGPU_TEST_ADAPTERS="$adapters" timeout 400 python3 -P -m pytest -q -p no:cacheprovider \
    tests/test_ops.py tests/test_ops_transform.py tests/test_ops_matmul.py tests/test_ops_reduce.py \
    tests/test_models.py tests/test_errors.py tests/test_dynamic_models.py tests/test_conformance.py -k "not tensorflow" 2>&1 | tee "$OUT/tests.log" | tail -25
python3 -P -m wgpu_runtime conformance --adapter all wgpu_runtime/models/mobilenet_v2_035_128 .fixtures/mobilenet_v2 \
    --report "$OUT/conformance.md" --json > "$OUT/conformance.json"
echo "conformance exit $?"; head -c 1500 "$OUT/conformance.md"
