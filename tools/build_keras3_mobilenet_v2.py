#!/usr/bin/env python
"""Build issue 9's second MobileNetV2 conversion path for benchmarks: a Keras 3 MobileNetV2
(weights=None, seeded batch norms as tests/fixtures/convert_sources.py seeds them), exported as a
SavedModel and converted by the OFFICIAL converter (tensorflowjs), which leaves its batch norms
as Conv2D / DepthwiseConv2dNative -> Mul -> AddV2 -> Relu6 for our load-time optimizer.

    .venv/bin/python tools/build_keras3_mobilenet_v2.py OUT [--size 224] [--alpha 1.0]

Writes OUT/model.json + shards and OUT/io.npz (``x``: one seeded image, ``y``: Keras's output
for it), then checks our runtime against ``y`` on every local adapter. OUT is written whole or
not at all (built beside it, then renamed). The tests' fixture is the 128 / 0.35 one
(tests/test_optimize.py); the benchmarks use 224 / 1.0 (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(out: Path, size: int, alpha: float) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    sys.path.insert(0, str(ROOT / "tests"))
    import keras
    import numpy as np
    from fixtures import convert_sources
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as v2

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_tensor=keras.Input((size, size, 3), name="image"),
                                           weights=None, alpha=alpha)
    convert_sources._seed_mobilenet(model, 22)
    x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    y = np.asarray(model(x))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as work:
        work = Path(work)
        model.export(str(work / "saved_model"), verbose=False)
        v2.convert_tf_saved_model(str(work / "saved_model"), str(work / "model"))
        np.savez(work / "model" / "io.npz", x=x, y=y)
        if out.exists():
            shutil.rmtree(out)
        (work / "model").rename(out)


def check(out: Path) -> float:
    """The largest difference from Keras's output over the local adapters."""
    import numpy as np

    sys.path.append(str(ROOT))  # last: an installed wgpu_runtime first
    import wgpu_runtime as wr

    with np.load(out / "io.npz") as d:
        x, y = d["x"], d["y"]
    worst = 0.0
    for adapter in ("vulkan", "gl"):
        got = wr.load_graph_model(out, adapter=adapter).predict(x)
        got = next(iter(got.values())) if isinstance(got, dict) else got
        worst = max(worst, float(np.abs(np.asarray(got) - y).max()))
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--alpha", type=float, default=1.0)
    args = p.parse_args(argv)
    build(args.out, args.size, args.alpha)
    print(f"{args.out}: built; largest difference from Keras on lavapipe and llvmpipe: {check(args.out):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
