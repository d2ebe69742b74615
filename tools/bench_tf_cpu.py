"""TensorFlow CPU reference timing for docs/benchmarks.md: MobileNetV2 (alpha 1.0, 224x224,
batch 1, seeded random weights) called as a tf.function, warm-up discarded, median of N runs.

    .venv/bin/python tools/bench_tf_cpu.py [--runs 50]
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.applications.MobileNetV2(weights=None)
    fn = tf.function(lambda x: model(x, training=False))
    x = tf.constant(np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32))
    for _ in range(5):
        fn(x).numpy()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        fn(x).numpy()
        times.append((time.perf_counter() - t0) * 1e3)
    print(f"TF {tf.__version__} CPU, MobileNetV2 224 batch 1: median {statistics.median(times):.2f} ms, "
          f"min {min(times):.2f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
