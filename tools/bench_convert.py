"""Converter speed for docs/benchmarks.md ("Converter"): MobileNetV2 .h5 -> graph model, this
converter against the official tensorflowjs_converter, both run as a user runs them (a fresh
process per conversion, imports included), alternating, median of N runs; then the outputs
compared (weight bytes, op multiset).

    .venv/bin/python tools/bench_convert.py [--runs 3] [--keep DIR]

The model: tf_keras.applications.MobileNetV2(weights=None), alpha 1.0, 224x224, seeded, saved
as .h5 (tf_keras, which the official converter reads).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "TFDF_DISABLE_WELCOME_MESSAGE": "1"}


def build_model(path: Path) -> None:
    code = (
        "import os, numpy as np, tf_keras\n"
        "tf_keras.utils.set_random_seed(0)\n"
        "m = tf_keras.applications.MobileNetV2(weights=None)\n"
        "rng = np.random.default_rng(0)\n"
        "for l in m.layers:\n"
        "    if isinstance(l, tf_keras.layers.BatchNormalization):\n"
        "        n = l.get_weights()[0].shape\n"
        "        l.set_weights([rng.uniform(0.6, 1.4, n), rng.normal(0, .1, n), rng.normal(0, .1, n),"
        " rng.uniform(0.6, 1.4, n)])\n"
        f"m.save({str(path)!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, capture_output=True)


def timed(cmd) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{out.stderr[-2000:]}")
    return dt


def summary(folder: Path):
    mj = json.loads((folder / "model.json").read_text())
    ops = collections.Counter(n["op"] for n in mj["modelTopology"]["node"])
    data = b"".join((folder / p).read_bytes() for g in mj["weightsManifest"] for p in g["paths"])
    shards = [len((folder / p).read_bytes()) for g in mj["weightsManifest"] for p in g["paths"]]
    return ops, data, shards


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="keep the model and outputs in this folder")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-convert-"))
    work.mkdir(parents=True, exist_ok=True)
    h5 = work / "mobilenet_v2.h5"
    if not h5.exists():
        build_model(h5)
    ours_cmd = [sys.executable, "-m", "wgpu_runtime", "convert", "--input_format=keras",
                "--output_format=tfjs_graph_model", "--overwrite", str(h5), str(work / "ours")]
    official_cmd = [str(BIN / "tensorflowjs_converter"), "--input_format=keras",
                    "--output_format=tfjs_graph_model", str(h5), str(work / "official")]
    times = {"ours": [], "official": []}
    for _ in range(args.runs):
        shutil.rmtree(work / "official", ignore_errors=True)
        times["official"].append(timed(official_cmd))
        times["ours"].append(timed(ours_cmd))
    (ops_o, data_o, shards_o), (ops_u, data_u, shards_u) = summary(work / "official"), summary(work / "ours")
    result = {
        "model": "MobileNetV2 alpha 1.0 224 (tf_keras .h5)", "runs": args.runs,
        "official_s": [round(t, 2) for t in times["official"]], "ours_s": [round(t, 2) for t in times["ours"]],
        "official_median_s": round(statistics.median(times["official"]), 2),
        "ours_median_s": round(statistics.median(times["ours"]), 2),
        "weight_bytes_equal": data_o == data_u, "op_multiset_equal": ops_o == ops_u,
        "shards": shards_u, "ops": dict(sorted(ops_u.items())),
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
