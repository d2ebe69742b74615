#!/usr/bin/env python
"""Build the default model embedded in the package: wgpu_runtime/models/mobilenet_v2_035_128/.

    .venv/bin/python tools/make_default_model.py [--out FOLDER]

MobileNetV2 (tf_keras.applications, alpha 0.35, 128x128x3, 1000 classes, weights=None) with
seeded weights (tf_keras.utils.set_random_seed(0)); batch norms get non-trivial seeded
statistics and biases non-zero values (a fresh model's would fold to no-ops), and the classifier
kernel is scaled so the logits spread like a trained model's. It is exported as a SavedModel and
converted in-process by the official converter (tensorflowjs 4.22, the function behind
``tensorflowjs_converter --input_format=tf_saved_model --quantize_float16``), default 4 MiB
shards, TF_ENABLE_ONEDNN_OPTS=0.

reference.npz:
    x          [1, 128, 128, 3] float32, seeded uniform in [-1, 1] (MobileNetV2's input range)
    y          [1, 1000] TensorFlow's output from the DEQUANTIZED float16 weights, i.e. the
               weights a runtime decodes: TensorFlow executes the converted model.json itself,
               with the shards decoded by tensorflowjs.read_weights. (Casting the SavedModel's
               variables through float16 would not give these weights: the converter folds the
               batch norms into the conv kernels before it casts.)
    y_float32  [1, 1000] TensorFlow's output of the float32 SavedModel (for the float16 error)

Weights are seeded random: the model demonstrates and checks the runtime, it classifies nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"     # before TensorFlow is imported (see the notes)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAME = "mobilenet_v2_035_128"
MAX_BYTES = 4_200_000


def _fixture_tools():
    """The TF helpers of tests/fixtures/build_graph_models.py (model.json executed by TF, etc.)."""
    path = ROOT / "tests" / "fixtures" / "build_graph_models.py"
    spec = importlib.util.spec_from_file_location("_wgpu_runtime_build_fixtures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "wgpu_runtime" / "models" / NAME)
    args = ap.parse_args(argv)
    out = args.out.resolve()

    bf = _fixture_tools()
    bf.import_tensorflow()
    tf, tf_keras = bf.tf, bf.tf_keras

    bf.seed_all(0)                                  # clear_session + set_random_seed(0)
    inp = tf_keras.Input((128, 128, 3), name="input")
    model = tf_keras.applications.MobileNetV2(alpha=0.35, input_tensor=inp, weights=None)
    bf.randomize_weights(model, seed=1)
    bf.scale_classifier(model)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{NAME}.work-", dir=out.parent))
    try:
        sm = work / "saved_model"
        tf.saved_model.save(model, str(sm))
        conv = work / NAME
        bf.tfjs_convert.convert_tf_saved_model(
            str(sm), str(conv), quantization_dtype_map={"float16": True},
            metadata={"wgpu_runtime": {
                "model": "MobileNetV2 alpha=0.35 128x128x3, 1000 classes",
                "weights": "seeded random (tf_keras.utils.set_random_seed(0)), NOT trained",
                "built_by": "tools/make_default_model.py"}})
        # The converter writes protobuf map entries (node attrs) in an unstable order: sort the
        # keys so a rebuild gives identical bytes (same JSON value; weights are byte-stable).
        mj_path = conv / "model.json"
        mj_path.write_text(json.dumps(json.loads(mj_path.read_text()), sort_keys=True))
        x = np.random.default_rng(0).uniform(-1.0, 1.0, (1, 128, 128, 3)).astype(np.float32)
        (in_key,) = bf.signature_input_keys(sm)
        y_float = bf.run_saved_model(sm, {in_key: x})
        y_dequant = bf.run_converted(conv, {in_key: x})
        (out_key,) = y_float
        y, yf = y_dequant[out_key], y_float[out_key]
        np.savez(conv / "reference.npz", x=x, y=y, y_float32=yf)

        size = sum(p.stat().st_size for p in conv.iterdir())
        if size > MAX_BYTES:
            raise SystemExit(f"{conv}: {size} bytes, over the {MAX_BYTES} budget")
        if out.exists():
            shutil.rmtree(out)
        os.rename(conv, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mj = json.loads((out / "model.json").read_text())
    ops = bf.op_multiset(mj)
    print(f"wrote {out} ({size / 1e6:.2f} MB): {sorted(p.name for p in out.iterdir())}")
    print(f"signature: inputs { {k: v['name'] for k, v in mj['signature']['inputs'].items()} } "
          f"outputs { {k: v['name'] for k, v in mj['signature']['outputs'].items()} }")
    print(f"y: argmax {int(y.argmax())}, max {y.max():.4g}; float16 vs float32 weights: "
          f"max abs {np.abs(y - yf).max():.3g}, relative to max {np.abs(y - yf).max() / np.abs(yf).max():.3g}")
    print(f"ops ({sum(ops.values())}): {bf.format_ops(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
