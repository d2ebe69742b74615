#!/usr/bin/env python
"""Fine-tune a TF.js layers model (compile / fit on the CPU, predict on the GPU), save it in the
TF.js layers format, reload it and check the reloaded model predicts the same.

    .venv/bin/python examples/fine_tune_and_save_for_tfjs.py [WORK_DIR] [--adapter vulkan]

The starting point is a small Keras model converted to a TF.js layers model with the CLI (needs
TensorFlow: ``pip install -e .[convert]``); a model.json TF.js wrote works the same way. The
saved folder loads in TF.js (``tf.loadLayersModel``) and converts back to Keras
(``python -m wgpu_runtime convert --input_format=tfjs_layers_model``). Everything is written
under WORK_DIR (default: a temporary folder, removed at the end).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

TOLERANCE = 1e-6      # the reloaded model runs the same weights through the same kernels


def make_tfjs_layers_model(work: Path) -> Path:
    """A seeded Keras classifier (8 features -> 3 classes), converted to a TF.js layers model."""
    os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0", KERAS_HOME=str(work / "keras_home"))
    try:
        import tf_keras as keras
    except ImportError:
        import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(3, activation="softmax")])
    with warnings.catch_warnings():           # "HDF5 is a legacy format": it is the one TF.js reads
        warnings.simplefilter("ignore")
        model.save(work / "base.h5")
    subprocess.run([sys.executable, "-m", "wgpu_runtime", "convert", "--input_format=keras", "--overwrite",
                    str(work / "base.h5"), str(work / "base_tfjs")], check=True)
    return work / "base_tfjs" / "model.json"


def main(work: Path, adapter: str | None) -> int:
    import wgpu_runtime as wr

    # 1. Load the layers model onto the GPU.
    model = wr.load_layers_model(make_tfjs_layers_model(work), adapter=adapter)
    model.summary()

    # 2. Seeded data: the class is which of three fixed directions a sample points along most.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    y = np.argmax(x @ rng.standard_normal((8, 3)).astype(np.float32), axis=1)

    # 3. Fine-tune on the CPU autograd (a few epochs; seed fixes shuffling and dropout).
    model.compile(optimizer=wr.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, seed=0, verbose=0)
    losses = history.history["loss"]
    print(f"loss per epoch: {', '.join(f'{v:.4f}' for v in losses)}; "
          f"accuracy {history.history['accuracy'][-1]:.3f}")
    if not losses[-1] < losses[0]:
        print("FAILED: training did not lower the loss", file=sys.stderr)
        return 1

    # 4. Save (model.json + weight shards), reload, and compare GPU predictions.
    model.save(work / "tuned")
    reloaded = wr.load_layers_model(work / "tuned", adapter=adapter)
    before, after = model.predict(x), reloaded.predict(x)
    diff = float(np.max(np.abs(before - after)))
    print(f"saved to {work / 'tuned'}: {', '.join(sorted(p.name for p in (work / 'tuned').iterdir()))}")
    print(f"max abs diff, reloaded vs fine-tuned: {diff:.3g} (tolerance {TOLERANCE:g})")
    if diff > TOLERANCE:
        print("MISMATCH: the reloaded model predicts differently", file=sys.stderr)
        return 1
    print("OK: the reloaded model predicts the same")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Fine-tune a TF.js layers model, save it, reload it, compare.")
    p.add_argument("work_dir", nargs="?", type=Path, help="where to write (default: a temporary folder)")
    p.add_argument("--adapter", help="adapter substring, e.g. vulkan or gl (default: wgpu's choice)")
    args = p.parse_args()
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        sys.exit(main(args.work_dir.resolve(), args.adapter))
    with tempfile.TemporaryDirectory(prefix="wgpu-runtime-example-") as tmp:
        sys.exit(main(Path(tmp), args.adapter))
