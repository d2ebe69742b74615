#!/usr/bin/env bash
# Fill .whl/ and .gl/ (git-ignored) with what tools/gpu_bench.sh and tools/gpu_check.sh install on
# the lent GPU machine, where nothing can be downloaded (../shared/notes/gpu-h200.md): wheels of
# the runtime's dependencies but numpy (wgpu and its needs, rich and its needs: pinned to what this
# tree runs here), for that machine's Python 3.12 (manylinux x86_64), and the
# Vulkan / EGL loaders as .debs (unpacked there with dpkg -x). Then prints what to carry and how
# big it is (the device tool carries 64 MiB at most).
#   tools/gpu_prepare.sh            # needs PyPI and the Debian mirror (this machine, CI)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
# the versions this tree is tested with here (.venv), for the machine's Python 3.12
PINS=($($PY -c 'import importlib.metadata as m; print(*(f"{p}=={m.version(p)}" for p in ("wgpu", "cffi", "pycparser", "rendercanvas", "rich", "markdown-it-py", "mdurl", "pygments")))'))
rm -rf .whl .gl
mkdir -p .whl .gl
$PY -m pip download -q --no-deps --only-binary=:all: --implementation cp --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "${PINS[@]}"
(cd .gl && apt-get download -q libvulkan1 libegl1 libglvnd0 libgles2 >/dev/null)
ls .whl .gl
# models people ship (tests/fixtures/shipped_models.py fetches them): pose at 368x368 and 256x256,
# MoveNet, segmentation, a detector with NMS (dynamic executor), CenterNet's big TopK; ~20 MB
rm -rf .fixtures/shipped_gpu && mkdir -p .fixtures/shipped_gpu
$PY - <<'PY'
import shutil, sys
sys.path.append("tests")
from fixtures.shipped_models import model_json
for name in ("efficientpose", "blazepose-full", "movenet-lightning", "selfie", "handtrack", "centernet"):
    src = model_json(name)
    for f in (src, src.with_suffix(".bin")):
        shutil.copy(f, ".fixtures/shipped_gpu/")
PY
CARRY=(.whl .gl .fixtures/mobilenet_v2 .fixtures/shipped_gpu)
[ -d .fixtures/keras3_mobilenet_v2_official ] && CARRY+=(.fixtures/keras3_mobilenet_v2_official)
du -csh "${CARRY[@]}" | tail -1
printf 'carry: ['; printf '"%s", ' "${CARRY[@]}" | sed 's/, $//'; printf ']\n'
