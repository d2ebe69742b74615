#!/usr/bin/env python
"""Big element-wise ops, three ways in one process: the stand-alone kernel reading storage
buffers ("buffers": unary.wgsl / binary.wgsl), a one-step chain reading texture copies one
element per invocation ("chain1"), and the same four elements per invocation ("chain4",
elementwise_chain._quads). Each is a one-op model; rounds interleave the three, each round the
min of --runs calls (wall time of ``execute``: input upload, dispatches, read-back), and the
median over rounds is printed with the ratios. Outputs are checked to be identical.

    .venv/bin/python tools/bench_elementwise.py [--adapter vulkan] [--rounds 6] [--runs 5]

The chain paths are what software adapters run by default (texture kernels first) for a float32
op whose inputs have at least elementwise_chain.TEXTURE_MIN_ELEMENTS elements; "chain4" where the
output is whole vec4s and every input has its layout, is a scalar or varies along the last dim.
On other adapters the chains read storage buffers (their fused chains do; a stand-alone op runs
"buffers" there), which is what this measures on a real GPU (tools/gpu_bench.sh).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: an installed wgpu_runtime first

CASES = [("AddV2", [(1, 56, 56, 144), (1, 56, 56, 144)]), ("Relu6", [(1, 112, 112, 96)]),
         ("Mul", [(1, 28, 28, 192), (192,)]), ("Sigmoid", [(1, 1 << 20)]), ("AddV2", [(1 << 20,), (1 << 20,)])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", default="vulkan")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from wgpu_runtime.device import get_device
    from wgpu_runtime.graph.single_op import op_model
    from wgpu_runtime.ops import elementwise_chain as chain

    device = get_device(args.adapter)
    print(f"{device.name}; wall ms per call, median over {args.rounds} rounds of the min of {args.runs}")
    rng = np.random.default_rng(0)
    threshold, quads = chain.TEXTURE_MIN_ELEMENTS, chain._quads
    ways = {"buffers": (1 << 62, quads), "chain1": (threshold, lambda *a: False), "chain4": (threshold, quads)}
    for op, shapes in CASES:
        xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        feeds = {f"in{i}": x for i, x in enumerate(xs)}
        models = {}
        steps = {"steps": [[op, {}, [f"i{k}" for k in range(len(xs))]]]}
        try:
            for way, (min_elements, quads_rule) in ways.items():
                chain.TEXTURE_MIN_ELEMENTS, chain._quads = min_elements, quads_rule
                # "buffers": the op itself (no adapter chains it with the threshold out of reach);
                # the chains as such, so that adapters without texture kernels first run them too
                models[way] = (op_model(op, {}, xs, device, const_inputs=set()) if way == "buffers" else
                               op_model(chain.OP, steps, xs, device, const_inputs=set()))
                models[way].execute(feeds)          # planned (with the way's settings) and warm
        finally:
            chain.TEXTURE_MIN_ELEMENTS, chain._quads = threshold, quads
        times = {way: [] for way in models}
        for _ in range(args.rounds):
            for way, m in models.items():
                best = float("inf")
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    m.execute(feeds)
                    best = min(best, time.perf_counter() - t0)
                times[way].append(best * 1e3)
        med = {way: statistics.median(t) for way, t in times.items()}
        outs = [np.asarray(m.execute(feeds)[0]) for m in models.values()]
        same = all(np.array_equal(outs[0], o) for o in outs[1:])
        print(f"{op} {' '.join(str(s) for s in shapes)}: " + ", ".join(f"{w} {t:.2f}" for w, t in med.items())
              + f"; chain4/chain1 {med['chain4'] / med['chain1']:.2f}, chain4/buffers "
              f"{med['chain4'] / med['buffers']:.2f}; identical outputs: {same}")


if __name__ == "__main__":
    main()
