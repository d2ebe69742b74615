"""Benchmark one graph model: load, first inference (shader compiles) apart, warm-up discarded,
then timed runs; per-op GPU time from timestamp queries where the adapter has them."""
from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .graph import executor
from .graph.model import load_graph_model
from .inputs import random_inputs


@dataclass
class BenchResult:
    model: str
    adapter: str
    backend: str
    batch: int
    load_ms: float
    first_ms: float
    pipelines_compiled: int
    runs: int
    warmup: int
    median_ms: float
    min_ms: float
    p90_ms: float
    dispatches: int | None             # None on the dynamic executor (not a fixed plan)
    encode_us_per_dispatch: float | None
    weight_bytes: int
    peak_activation_bytes: int | None
    executor: str = "static"           # "static": one prepared plan; "dynamic": control flow
    gpu_ms_total: float | None = None
    top_ops: list = field(default_factory=list)   # [{op, count, gpu_ms, share}]

    def to_dict(self) -> dict:
        return asdict(self)


def _bench_dynamic(model, feeds, runs, warmup, batch, load_ms, first_ms, pipelines_compiled, progress):
    """Models with control flow or data-dependent shapes run on the dynamic executor: whole
    ``execute`` calls are timed; dispatch counts and per-op GPU times are not collected."""
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        model.execute(feeds)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
        if progress:
            progress()
    dev = model.device
    return BenchResult(
        model=str(model.artifacts.path), adapter=dev.name, backend=dev.backend, batch=batch, load_ms=load_ms,
        first_ms=first_ms, pipelines_compiled=pipelines_compiled, runs=runs, warmup=warmup,
        median_ms=statistics.median(times), min_ms=min(times), p90_ms=_percentile(times, 90), dispatches=None,
        encode_us_per_dispatch=None, weight_bytes=model.weight_bytes, peak_activation_bytes=None,
        executor="dynamic")


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def bench(path, adapter: str | None = None, runs: int = 20, warmup: int = 3, batch: int = 1,
          profile: bool = True, progress=None, feeds: dict | None = None) -> BenchResult:
    """``feeds``: the inputs to time (default: seeded random inputs, see inputs.random_inputs)."""
    t0 = time.perf_counter()
    model = load_graph_model(path, adapter)
    model.device.wait_idle()
    load_ms = (time.perf_counter() - t0) * 1e3
    dev = model.device
    feeds = feeds or random_inputs(model.inputs, batch)

    compiled = dev.pipelines.compiled
    t0 = time.perf_counter()
    model.execute(feeds)
    first_ms = (time.perf_counter() - t0) * 1e3
    pipelines_compiled = dev.pipelines.compiled - compiled
    if model.is_dynamic:
        return _bench_dynamic(model, feeds, runs, warmup, batch, load_ms, first_ms, pipelines_compiled, progress)
    plan, arrays = model.prepare(feeds)

    for _ in range(warmup):
        executor.run(dev, plan, arrays)
        if progress:
            progress()
    times, encode = [], []
    for _ in range(runs):
        stats = {}
        t0 = time.perf_counter()
        plan, arrays = model.prepare(feeds)      # what predict() does: checks + plan cache lookup
        executor.run(dev, plan, arrays, stats)
        times.append((time.perf_counter() - t0) * 1e3)
        encode.append(stats["encode_s"])
        if progress:
            progress()

    result = BenchResult(
        model=str(model.artifacts.path), adapter=dev.name, backend=dev.backend, batch=batch,
        load_ms=load_ms, first_ms=first_ms, pipelines_compiled=pipelines_compiled, runs=runs, warmup=warmup,
        median_ms=statistics.median(times), min_ms=min(times), p90_ms=_percentile(times, 90),
        dispatches=len(plan.steps),
        encode_us_per_dispatch=statistics.median(encode) * 1e6 / max(1, len(plan.steps)),
        weight_bytes=model.weight_bytes, peak_activation_bytes=plan.temp_bytes)
    if profile and dev.has_timestamps and plan.steps:
        _, step_ms = executor.run_profiled(dev, plan, arrays)
        by_op: dict[str, list[float]] = defaultdict(list)
        for st, ms in zip(plan.steps, step_ms):
            by_op[st.op].append(ms)
        total = sum(step_ms)
        result.gpu_ms_total = total
        result.top_ops = sorted(({"op": op, "count": len(v), "gpu_ms": sum(v),
                                  "share": sum(v) / total if total else 0.0} for op, v in by_op.items()),
                                key=lambda r: -r["gpu_ms"])
    return result
