#!/usr/bin/env bash
# The prepared speed run on the lent GPU machine (issue 9), where nothing can be downloaded:
# installs the carried wheels (.whl/) and Vulkan loader (.gl/), then in ONE run: the autotuner,
# our kernels against the PyTorch peers (cuBLAS / cuDNN), MobileNetV2 against torchvision's
# (eager and CUDA graph), first inference in a new process (cold and warm caches), the
# kernel-variant correctness tests on the GPU, serving, and conformance with the tuned variants. Everything lands in
# $OUT (JSON and logs); record.json indexes it. Each step has its own time limit so one slow step
# cannot eat the machine's time.
#   OUT=/tmp/gpu_bench tools/gpu_bench.sh
# Run from the device tool with carry [".whl", ".gl", ".fixtures/mobilenet_v2", ".fixtures/shipped_gpu", ...] (tools/gpu_prepare.sh
# fills .whl/, .gl/ and .fixtures/shipped_gpu/ here and prints the carry list).
#   GPU_BENCH_DRY=1 OUT=/tmp/gpu_bench_dry tools/gpu_bench.sh   # here, on lavapipe with .venv: every
#       command of the script runs (nothing installed), and the end lists any that refused its
#       arguments or raised -- so that a renamed flag cannot waste the lent machine's minutes
set -uo pipefail
OUT="${OUT:-/tmp/gpu_bench}"; mkdir -p "$OUT"
T0=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - T0 )) s)"; }
# The device tool stops a command at 600 s: every step's limit is cut to what is left of BUDGET, so
# that the script always reaches record.json (steps past the budget get 1 s). A dry run here is slower.
BUDGET="${GPU_BENCH_BUDGET:-$([ -n "${GPU_BENCH_DRY:-}" ] && echo 3000 || echo 540)}"
lim() { local left=$(( BUDGET - ($(date +%s) - T0) )); [ "$left" -lt 1 ] && left=1; echo $(( $1 < left ? $1 : left )); }
export PYTHONUNBUFFERED=1 WGPU_RUNTIME_CACHE="$OUT/cache"
if [ -n "${GPU_BENCH_DRY:-}" ]; then
    PY="${PY:-.venv/bin/python -P}"
    $PY -m wgpu_runtime adapters --json > "$OUT/adapters.json"
    echo "dry run: no GPU" > "$OUT/gpu.txt"
else
    for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/wr . >/dev/null || exit 1
    export PYTHONPATH=/tmp/wr:/tmp/site
    PY="python3 -P"
    if ! $PY -m wgpu_runtime adapters --json > "$OUT/adapters.json" || ! grep -qi nvidia "$OUT/adapters.json"; then
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
        $PY -m wgpu_runtime adapters --json > "$OUT/adapters.json"
    fi
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt"
fi
cat "$OUT/gpu.txt"
MODELS=".fixtures/mobilenet_v2"
[ -d .fixtures/keras3_mobilenet_v2_official ] && MODELS="$MODELS .fixtures/keras3_mobilenet_v2_official"

step "autotune"
for m in $MODELS; do
    for b in 1 8; do
        timeout $(lim 90) $PY -m wgpu_runtime tune "$m" --adapter vulkan --batch "$b" --json \
            > "$OUT/tune_$(basename "$m")_b$b.json" 2> "$OUT/tune_$(basename "$m")_b$b.err"
    done
done

step "kernels vs PyTorch"
timeout $(lim 150) $PY tools/bench_kernels.py --adapter vulkan --matmul 1024,4096 --batch 8 --runs 20 --torch --json "$OUT/kernels.json" > "$OUT/kernels.txt" 2>&1
tail -30 "$OUT/kernels.txt"

step "models vs PyTorch"
timeout $(lim 60) python3 tools/bench_torch_models.py --json "$OUT/torch_models.json" > /dev/null 2>&1
for m in $MODELS; do
    for b in 1 8; do
        timeout $(lim 60) $PY -m wgpu_runtime bench "$m" --adapter vulkan --batch "$b" --runs 100 --warmup 10 --json \
            > "$OUT/bench_$(basename "$m")_b$b.json" 2> "$OUT/bench_$(basename "$m")_b$b.err"
        grep -E '^  "(median_ms|gpu_ms_total|dispatches|first_ms)"' "$OUT/bench_$(basename "$m")_b$b.json" | tr -d '\n'; echo " $m b$b"
    done
done
timeout $(lim 60) $PY -m wgpu_runtime bench .fixtures/mobilenet_v2 --adapter vulkan --no-tune --runs 50 --json \
    > "$OUT/bench_mobilenet_v2_untuned.json" 2>&1
for b in 1 8; do    # each body encoded on the call's own path (executor.py's encoding ahead off): the A/B
    WGPU_RUNTIME_ENCODE_AHEAD=0 timeout $(lim 60) $PY -m wgpu_runtime bench .fixtures/mobilenet_v2 --adapter vulkan --batch "$b" \
        --runs 100 --warmup 10 --json > "$OUT/bench_mobilenet_v2_b${b}_inline_encode.json" 2>&1
done
for b in 1 8; do    # naga's loop bounding kept (shader_modules.py: off by default): the A/B
    WGPU_RUNTIME_LOOP_BOUNDING=1 timeout $(lim 60) $PY -m wgpu_runtime bench .fixtures/mobilenet_v2 --adapter vulkan --batch "$b" \
        --runs 100 --warmup 10 --json > "$OUT/bench_mobilenet_v2_b${b}_loop_bounding.json" 2>&1
done
WGPU_RUNTIME_LOOP_BOUNDING=1 timeout $(lim 90) $PY tools/bench_kernels.py --adapter vulkan --matmul 4096 --batch 8 --runs 10 \
    --json "$OUT/kernels_loop_bounding.json" > "$OUT/kernels_loop_bounding.txt" 2>&1
for b in 1 8; do    # f16 arithmetic (precision.py): tuned, then timed
    timeout $(lim 60) $PY -m wgpu_runtime tune .fixtures/mobilenet_v2 --adapter vulkan --batch "$b" --precision float16 --json \
        > "$OUT/tune_mobilenet_v2_f16_b$b.json" 2>&1
    timeout $(lim 60) $PY -m wgpu_runtime bench .fixtures/mobilenet_v2 --adapter vulkan --batch "$b" --precision float16 \
        --runs 100 --warmup 10 --json > "$OUT/bench_mobilenet_v2_f16_b$b.json" 2>&1
done
timeout $(lim 60) $PY -m wgpu_runtime bench --adapter vulkan --runs 100 --json > "$OUT/bench_default.json" 2>&1
timeout $(lim 60) $PY -m wgpu_runtime bench --adapter vulkan --runs 100 --concurrency 4 --dynamic-batching 4 --json > "$OUT/bench_default_c4.json" 2>&1

step "first inference in a new process"
timeout $(lim 90) $PY -m wgpu_runtime bench .fixtures/mobilenet_v2 --adapter vulkan --runs 5 --first-inference --json \
    > "$OUT/bench_first.json" 2> "$OUT/bench_first.err"

# after the measurements the targets need (the variant tests take ~2 min here: 65 variants since
# the eighth session), before the extras; conformance with the tuned winners runs at the end
step "variant correctness on the GPU"
WGPU_TEST_ADAPTERS=vulkan timeout $(lim 150) $PY -m pytest -q -x -p no:cacheprovider tests/test_kernel_variants.py \
    2>&1 | tail -15 > "$OUT/variants_tests.log"; tail -3 "$OUT/variants_tests.log"
WGPU_TEST_ADAPTERS=vulkan timeout $(lim 120) $PY -m pytest -q -p no:cacheprovider tests/test_precision.py tests/test_encode_ahead.py \
    2>&1 | tail -15 > "$OUT/precision_tests.log"; tail -3 "$OUT/precision_tests.log"   # f16 kernels, encoding ahead

step "serving: read-back of 8.7 MB, chaining, calls in flight"
timeout $(lim 90) $PY tools/bench_serving.py --adapter vulkan --repeat 3 --runs 20 > "$OUT/serving.txt" 2>&1
timeout $(lim 60) $PY tools/bench_loads.py --adapter vulkan --rounds 2 --runs 5 > "$OUT/loads.txt" 2>&1 || true
timeout $(lim 60) $PY tools/bench_elementwise.py --adapter vulkan --rounds 3 --runs 5 > "$OUT/elementwise.txt" 2>&1 || true
timeout $(lim 30) $PY tools/bench_immediates.py --adapter vulkan --rounds 10 --json "$OUT/immediates.json" > "$OUT/immediates.txt" 2>&1 || true

step "conformance with the tuned variants"
timeout $(lim 120) $PY -m wgpu_runtime conformance --adapter vulkan wgpu_runtime/models/mobilenet_v2_035_128 .fixtures/mobilenet_v2 \
    --report "$OUT/conformance.md" --json > "$OUT/conformance.json" 2> "$OUT/conformance.err"
echo "conformance exit $?"; grep -E "pass|fail" "$OUT/conformance.md" | head -5
timeout $(lim 60) $PY -m wgpu_runtime conformance --adapter vulkan --precision float16 \
    --ops 'MatMul,_FusedMatMul,BatchMatMulV2,Conv2D,_FusedConv2D,Conv2DBackpropInput' \
    --json > "$OUT/conformance_f16.json" 2> "$OUT/conformance_f16.err"
echo "conformance float16 exit $?"

# last: what time is left
step "models people ship"    # .fixtures/shipped_gpu (tools/gpu_prepare.sh): wall and GPU time, dispatches
for m in .fixtures/shipped_gpu/*.json; do
    [ -f "$m" ] || continue
    timeout $(lim 30) $PY -m wgpu_runtime bench "$m" --adapter vulkan --runs 50 --warmup 5 --json \
        > "$OUT/shipped_$(basename "$m" .json).json" 2> "$OUT/shipped_$(basename "$m" .json).err"
    grep -E '^  "(median_ms|gpu_ms_total|dispatches)"' "$OUT/shipped_$(basename "$m" .json).json" | tr -d '\n'; echo " $m"
done

ls .fixtures/shipped_gpu/*.json >/dev/null 2>&1 && timeout $(lim 90) $PY -m wgpu_runtime conformance --adapter vulkan --no-ops \
    .fixtures/shipped_gpu/*.json --json > "$OUT/conformance_shipped.json" 2> "$OUT/conformance_shipped.err"
echo "conformance of the shipped models exit $? (blazepose-full and centernet drift past the model bound on lavapipe too: docs/benchmarks.md)"

if [ -n "${GPU_BENCH_DRY:-}" ]; then     # the commands that refused their arguments or raised
    grep -lE "^usage:|unrecognized arguments|invalid choice|Traceback" "$OUT"/*.txt "$OUT"/*.err "$OUT"/*.log \
        "$OUT"/*.json 2>/dev/null | sed 's/^/dry run: check /'
fi
step "done"
$PY - "$OUT" <<'EOF'
import json, os, sys, glob
out = sys.argv[1]
record = {"record": "wgpu-runtime gpu_bench", "files": {}}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    try:
        record["files"][os.path.basename(path)] = json.load(open(path))
    except Exception as e:  # noqa: BLE001 -- a failed step leaves a partial file: say so
        record["files"][os.path.basename(path)] = {"error": f"{type(e).__name__}: {e}"}
json.dump(record, open(os.path.join(out, "record.json"), "w"), indent=1)
print("record.json written")
EOF
