#!/usr/bin/env python
"""Training speed: steps per second of wgpu-runtime's CPU autograd against Keras (tf_keras on
TensorFlow CPU), same model, same initial weights, same batch, same optimizer.

    .venv/bin/python tools/bench_training.py [--steps N] [--batch B] [--json]

Models: an MLP (784-128-64-10, relu, softmax) and a small CNN (28x28x1: Conv 16 3x3, MaxPool,
Conv 32 3x3, MaxPool, Flatten, Dense 10), Adam, sparse categorical crossentropy, random data.
Each side runs in its own process (TensorFlow's idle worker threads would otherwise spin beside
ours), one warm-up epoch (Keras traces its tf.function there), then one timed epoch of N steps
with shuffle=False. One run each (the machine is shared: repeat for a spread). Our fit() keeps
OpenBLAS to one thread while it trains (see wgpu_runtime/autograd/blas.py).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _models(k):
    L = k.layers
    mlp = k.Sequential([k.Input((784,)), L.Dense(128, activation="relu"), L.Dense(64, activation="relu"),
                        L.Dense(10, activation="softmax")], name="mlp")
    cnn = k.Sequential([k.Input((28, 28, 1)), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(),
                        L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                        L.Dense(10, activation="softmax")], name="small_cnn")
    return {"mlp": (mlp, (784,)), "small_cnn": (cnn, (28, 28, 1))}


def _time_fit(model, x, y, batch, **kw):
    model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, shuffle=False, verbose=0, **kw)   # warm-up
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, **kw)
    return time.perf_counter() - t0


def _measure(model_name: str, side: str, steps: int, batch: int, blas_threads: int) -> float:
    """Seconds for ``steps`` training steps of one side (run in a child process)."""
    import tf_keras as k

    import wgpu_runtime as wr
    from wgpu_runtime.layers import model_from_topology

    k.utils.set_random_seed(0)
    km, shape = _models(k)[model_name]
    rng = np.random.default_rng(0)
    n = steps * batch
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    if side == "keras":
        km.compile(k.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        return _time_fit(km, x, y, batch)
    ours = model_from_topology({"model_config": json.loads(km.to_json())})
    ours.set_weights(km.get_weights())
    ours.compile(wr.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return _time_fit(ours, x, y, batch, blas_threads=blas_threads or None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads during our fit (fit's default 1; 0: leave numpy's default)")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "SIDE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(*args.child, args.steps, args.batch, args.blas_threads)))
        return 0

    import tensorflow as tf
    import tf_keras as k

    results = []
    for name in ("mlp", "small_cnn"):
        seconds = {}
        for side in ("keras", "ours"):
            out = subprocess.run([sys.executable, __file__, "--child", name, side, "--steps", str(args.steps),
                                  "--batch", str(args.batch), "--blas-threads", str(args.blas_threads)],
                                 capture_output=True, text=True, check=True)
            seconds[side] = float(out.stdout.strip().splitlines()[-1])
        results.append({"model": name, "batch": args.batch, "steps": args.steps,
                        "keras_steps_per_s": args.steps / seconds["keras"],
                        "ours_steps_per_s": args.steps / seconds["ours"], "ratio": seconds["keras"] / seconds["ours"]})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"tensorflow": tf.__version__, "tf_keras": k.__version__, "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "load_average_1min": load,
            "blas_threads": args.blas_threads or "numpy default",
            "results": results}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"TensorFlow {tf.__version__} (tf_keras {k.__version__}, CPU) vs wgpu-runtime CPU autograd "
          f"(numpy {np.__version__}), {os.cpu_count()} CPUs (load average {load:.2f}), batch {args.batch}, "
          f"{args.steps} timed steps, Adam")
    print(f"{'model':<10} {'Keras steps/s':>14} {'ours steps/s':>13} {'ours / Keras':>13}")
    for r in results:
        print(f"{r['model']:<10} {r['keras_steps_per_s']:>14.1f} {r['ours_steps_per_s']:>13.1f} {r['ratio']:>12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
