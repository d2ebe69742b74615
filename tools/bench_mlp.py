#!/usr/bin/env python
"""The MLP of issue 9 (784-512-512-10, relu, softmax; seeded tf_keras weights) at batch 256: ours
against TF.js's wasm backend and TensorFlow on the CPU, in one run, rounds interleaved.

    .venv/bin/python tools/bench_mlp.py [--adapter vulkan] [--rounds 3] [--runs 30] [--out DIR]

Builds the Keras model, converts it with our converter (``convert --input_format=keras
--output_format=tfjs_graph_model``) into ``--out`` (default: a temporary folder), then per round:
``python -m wgpu_runtime bench --json`` (a new process), ``node tools/bench_tfjs.js --backend
wasm`` (a new process, 50 warm-up runs: Node's WebAssembly tiers up), and the Keras model as a
``tf.function`` in this process (oneDNN off, as tools/bench_tf_cpu.py). Prints each round's
median and the median over rounds, and the ratio ours / wasm.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = Path(__file__).resolve().parents[1]
BATCH = 256


def build(out: Path):
    import tf_keras as k

    k.utils.set_random_seed(0)
    model = k.Sequential([k.Input((784,)), k.layers.Dense(512, activation="relu"),
                          k.layers.Dense(512, activation="relu"), k.layers.Dense(10, activation="softmax")])
    h5 = out / "mlp.h5"
    model.save(h5)
    subprocess.run([sys.executable, "-m", "wgpu_runtime", "convert", "--input_format=keras",
                    "--output_format=tfjs_graph_model", "--overwrite", str(h5), str(out / "graph")], check=True,
                   stdout=subprocess.DEVNULL)
    return model


def ours(folder: Path, adapter: str | None, runs: int) -> float:
    cmd = [sys.executable, "-m", "wgpu_runtime", "bench", str(folder), "--batch", str(BATCH), "--runs", str(runs),
           "--json", "-q"] + (["--adapter", adapter] if adapter else [])
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["median_ms"]


def wasm(folder: Path, runs: int) -> float:
    cmd = ["node", str(ROOT / "tools" / "bench_tfjs.js"), str(folder), "--backend", "wasm", "--batch", str(BATCH),
           "--runs", str(runs), "--warmup", "50"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["median_ms"]


def tf_cpu(model, runs: int) -> float:
    import numpy as np
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (BATCH, 784)).astype(np.float32))
    for _ in range(5):
        fn(x).numpy()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x).numpy()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None, help="where to write the model (default: a temporary folder)")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-mlp-"))
    out.mkdir(parents=True, exist_ok=True)
    model = build(out)
    flops = 2 * BATCH * (784 * 512 + 512 * 512 + 512 * 10)
    rows = {"ours": [], "tfjs wasm": [], "tf cpu": []}
    for r in range(args.rounds):
        rows["ours"].append(ours(out / "graph", args.adapter, args.runs))
        rows["tfjs wasm"].append(wasm(out / "graph", args.runs))
        rows["tf cpu"].append(tf_cpu(model, args.runs))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in rows.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in med.items():
        print(f"{k:10s} median {v:8.2f} ms  ({flops / v / 1e6:.1f} GFLOP/s)")
    print(f"ours / tfjs wasm: {med['ours'] / med['tfjs wasm']:.2f}x the time; ours / tf cpu: "
          f"{med['ours'] / med['tf cpu']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
