"""Interleaved A/B of the load-time graph optimizer: the same model loaded twice (optimizer off and
on), both warmed up, then run alternately (off/on, then on/off, ...) so that drift on a shared
machine hits both alike. Prints dispatches, median and min wall time per inference for each.

    .venv/bin/python tools/bench_optimizer.py MODEL [--runs 100] [--adapter vulkan] [--batch 1] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: an installed wgpu_runtime first

import wgpu_runtime as wr  # noqa: E402
from wgpu_runtime.graph import executor  # noqa: E402
from wgpu_runtime.inputs import random_inputs  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--adapter", default="vulkan")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    models = {o: wr.load_graph_model(args.model, adapter=args.adapter, optimize=o) for o in (False, True)}
    feeds = random_inputs(models[False].inputs, args.batch)
    plans = {o: m.prepare(feeds) for o, m in models.items()}
    for o, m in models.items():
        for _ in range(args.warmup):
            executor.run(m.device, *plans[o])
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(args.runs):
        for o in ((False, True) if i % 2 == 0 else (True, False)):
            t = time.perf_counter()
            executor.run(models[o].device, *plans[o])
            times[o].append((time.perf_counter() - t) * 1e3)
    result = {("optimized" if o else "as_converted"): {
        "dispatches": plans[o][0].dispatches, "median_ms": statistics.median(times[o]), "min_ms": min(times[o])}
        for o in (False, True)}
    result.update(model=args.model, adapter=models[True].device.name, runs=args.runs, batch=args.batch)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key in ("as_converted", "optimized"):
            r = result[key]
            print(f"{key:>12}: {r['dispatches']} dispatches, median {r['median_ms']:.1f} ms, min {r['min_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
