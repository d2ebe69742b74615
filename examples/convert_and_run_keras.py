#!/usr/bin/env python
"""Convert a Keras model with the CLI, run it on the GPU, and compare with Keras' own prediction.

    .venv/bin/python examples/convert_and_run_keras.py [WORK_DIR] [--adapter vulkan]

Needs TensorFlow (``pip install -e .[convert]``). Everything is written under WORK_DIR
(default: a temporary folder, removed at the end). Exit status 1 when the GPU's answer is
further from Keras' than TOLERANCE.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Allowed max |gpu - keras|, relative to the largest |keras output|: float32 through a few layers,
# summed in another order on the GPU, differs by ~1e-6 of the scale; a real bug moves it by >1e-2.
TOLERANCE = 1e-4


def build_keras_model(keras):
    """A small seeded CNN: conv, batch norm, pooling, dense, softmax."""
    keras.utils.set_random_seed(0)            # python, numpy and TF seeds: the same weights every run
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    return keras.Model(inp, out)


def main(work: Path, adapter: str | None) -> int:
    # TensorFlow quiet, and Keras' config file (keras.json) in the work folder instead of ~/.keras.
    os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0", KERAS_HOME=str(work / "keras_home"))
    try:
        import tf_keras as keras                # the Keras TF.js models come from; Keras 3 works too
    except ImportError:
        import keras

    # 1. A Keras model, saved as HDF5, and Keras' own prediction on seeded inputs.
    model = build_keras_model(keras)
    model.save(work / "model.h5")
    x = np.random.default_rng(0).standard_normal((4, 16, 16, 3)).astype(np.float32)
    want = model.predict(x, verbose=0)

    # 2. Convert with the command line (the same flags as tensorflowjs_converter).
    web_model = work / "web_model"
    subprocess.run([sys.executable, "-m", "wgpu_runtime", "convert", "--input_format=keras", "--overwrite",
                    str(work / "model.h5"), str(web_model)], check=True)

    # 3. Load it (a LayersModel: load_model reads what model.json says) and run it on the GPU.
    import wgpu_runtime as wr

    gpu_model = wr.load_model(web_model / "model.json", adapter=adapter)
    got = gpu_model.predict(x)

    # 4. Compare.
    diff = float(np.max(np.abs(got - want)))
    scale = float(np.max(np.abs(want)))
    print(f"{type(gpu_model).__name__} on {wr.get_device(adapter).name}")
    print(f"max abs diff vs Keras: {diff:.3g} (tolerance {TOLERANCE:g} x output scale {scale:.3g})")
    if diff > TOLERANCE * scale:
        print("MISMATCH: the GPU's output differs from Keras' beyond the tolerance", file=sys.stderr)
        return 1
    print("OK: the GPU's output matches Keras'")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Convert a Keras model, run it on the GPU, compare with Keras.")
    p.add_argument("work_dir", nargs="?", type=Path, help="where to write (default: a temporary folder)")
    p.add_argument("--adapter", help="adapter substring, e.g. vulkan or gl (default: wgpu's choice)")
    args = p.parse_args()
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        sys.exit(main(args.work_dir.resolve(), args.adapter))
    with tempfile.TemporaryDirectory(prefix="wgpu-runtime-example-") as tmp:
        sys.exit(main(Path(tmp), args.adapter))
