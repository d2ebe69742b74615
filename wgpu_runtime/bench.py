"""Benchmark one model (graph or layers): load, first inference (shader compiles) apart, warm-up
discarded, then timed runs; per-node GPU time from timestamp queries where the adapter has them.

A layers model is timed as its GPU inference runs in ``predict``: the graph its layers trace to,
on the same planner and executor as a graph model (loading includes tracing and uploading).
The result (``BenchResult.to_dict()``, what ``bench --json`` prints and ``--save`` writes) also
records the machine, the adapter and driver, and the versions, so that two saved runs can be
compared (bench_compare.py).
"""
from __future__ import annotations

import logging
import os
import platform
import socket
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace

import numpy as np

from .graph import executor
from .inputs import random_inputs
from .loading import load_model

logger = logging.getLogger(__name__)

RECORD = "wgpu-runtime bench"       # the "record" key of a saved result (bench --save)
SCHEMA = 1


@dataclass
class BenchResult:
    model: str
    adapter: str
    backend: str
    batch: int                          # rows per inference actually run (the inputs' first dim)
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
    model_format: str = "graph-model"  # or "layers-model"
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    stddev_ms: float = 0.0             # sample standard deviation of the timed runs (0 for one run)
    inferences_per_s: float = 0.0      # throughput: batch rows per second at the median time
    times_ms: list = field(default_factory=list)  # every timed run's wall time, in order
    nodes: list = field(default_factory=list)     # [{node, op, dispatches, gpu_ms}] in plan order (profiled run)
    adapter_info: dict = field(default_factory=dict)   # wgpu's adapter.info (vendor, device, description...)
    driver: str = ""                   # the adapter's driver description (e.g. "Mesa 22.3.6 (LLVM 15.0.6)")
    wgpu_version: str = ""
    runtime_version: str = ""
    machine: dict = field(default_factory=dict)        # hostname, cpu, cores, os, python
    created: str = ""                  # UTC, ISO 8601
    record: str = RECORD
    schema: int = SCHEMA

    def to_dict(self) -> dict:
        return asdict(self)


def timing_stats(times: list[float], batch: int) -> dict:
    """median / min / p90 / p99 / mean / stddev of wall times (ms), and the throughput."""
    median = statistics.median(times)
    return {"median_ms": median, "min_ms": min(times), "p90_ms": _percentile(times, 90),
            "p99_ms": _percentile(times, 99), "mean_ms": statistics.fmean(times),
            "stddev_ms": statistics.stdev(times) if len(times) > 1 else 0.0,
            "inferences_per_s": batch * 1e3 / median if median > 0 else 0.0, "times_ms": list(times)}


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")) and ":" in line:
                    name = line.split(":", 1)[1].strip()
                    if name and not name.isdigit():
                        return name
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    return {"hostname": socket.gethostname(), "cpu": _cpu_name(), "cores": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}", "platform": platform.platform(),
            "python": platform.python_version()}


def _environment(dev) -> dict:
    import wgpu

    from . import __version__

    info = {str(k): (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
            for k, v in dict(dev.adapter.info).items()}
    return {"adapter_info": info, "driver": str(info.get("description", "")),
            "wgpu_version": str(getattr(wgpu, "__version__", "")), "runtime_version": __version__,
            "machine": machine_info(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _rows(feeds: dict) -> int:
    first = next(iter(feeds.values()), None)
    a = np.asarray(first) if first is not None else None
    return int(a.shape[0]) if a is not None and a.ndim else 1


def _check_counts(runs: int, warmup: int, batch: int | None) -> None:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be an integer >= 1, got {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")


def _layers_specs(model) -> list:
    from .dtypes import layer_input_dtype

    return [SimpleNamespace(name=i["name"], shape=list(i["shape"]), dtype=layer_input_dtype(i["dtype"] or "float32"))
            for i in model.inputs]


def _load(path, adapter, batch, feeds):
    """(graph model to time, its feeds, model path, format) -- a layers model's traced GPU graph."""
    model = load_model(path, adapter)
    if hasattr(model, "execute"):                     # a graph model
        feeds = feeds or random_inputs(model.inputs, batch or 1)
        return model, feeds, str(model.artifacts.path), "graph-model"
    feeds = feeds or random_inputs(_layers_specs(model), batch or 1)
    xs = model._feeds(feeds)                           # checks names, shapes; casts to the input dtypes
    gm, traced = model.gpu_model(xs)
    return gm, dict(zip(traced.input_names, xs)), str(model.meta.get("path", path)), "layers-model"


def bench(path, adapter: str | None = None, runs: int = 20, warmup: int = 3, batch: int | None = None,
          profile: bool = True, progress=None, feeds: dict | None = None) -> BenchResult:
    """``feeds``: the inputs to time (default: seeded random inputs of ``batch`` rows, see
    inputs.random_inputs); with ``feeds`` the batch is their first dimension. ``progress()`` is
    called after each warm-up and timed run."""
    _check_counts(runs, warmup, batch)
    t0 = time.perf_counter()
    model, feeds, model_path, model_format = _load(path, adapter, batch, feeds)
    model.device.wait_idle()
    load_ms = (time.perf_counter() - t0) * 1e3
    dev = model.device
    ran = _rows(feeds)
    if batch is not None and batch != ran:
        logger.warning("batch %d not used: the inputs have %d rows (their first dimension); timing batch %d",
                       batch, ran, ran)

    compiled = dev.pipelines.compiled
    t0 = time.perf_counter()
    model.execute(feeds)
    first_ms = (time.perf_counter() - t0) * 1e3
    pipelines_compiled = dev.pipelines.compiled - compiled
    common = dict(model=model_path, adapter=dev.name, backend=dev.backend, batch=ran, load_ms=load_ms,
                  first_ms=first_ms, pipelines_compiled=pipelines_compiled, runs=runs, warmup=warmup,
                  weight_bytes=model.weight_bytes, model_format=model_format, **_environment(dev))
    if model.is_dynamic:
        return _bench_dynamic(model, feeds, runs, warmup, progress, common)
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

    result = BenchResult(**common, **timing_stats(times, ran), dispatches=len(plan.steps),
                         encode_us_per_dispatch=statistics.median(encode) * 1e6 / max(1, len(plan.steps)),
                         peak_activation_bytes=plan.temp_bytes)
    if profile and dev.has_timestamps and plan.steps:
        _, step_ms = executor.run_profiled(dev, plan, arrays)
        _add_profile(result, plan.steps, step_ms)
    elif profile and not dev.has_timestamps:
        logger.info("%s has no timestamp queries: no per-node GPU times", dev.name)
    return result


def _add_profile(result: BenchResult, steps, step_ms) -> None:
    by_op: dict[str, list[float]] = defaultdict(list)
    by_node: dict[str, dict] = {}
    for st, ms in zip(steps, step_ms):
        by_op[st.op].append(ms)
        row = by_node.setdefault(st.node, {"node": st.node, "op": st.op, "dispatches": 0, "gpu_ms": 0.0})
        row["dispatches"] += 1
        row["gpu_ms"] += ms
    total = sum(step_ms)
    result.gpu_ms_total = total
    result.nodes = list(by_node.values())
    result.top_ops = sorted(({"op": op, "count": len(v), "gpu_ms": sum(v),
                              "share": sum(v) / total if total else 0.0} for op, v in by_op.items()),
                            key=lambda r: -r["gpu_ms"])


def _bench_dynamic(model, feeds, runs, warmup, progress, common) -> BenchResult:
    """Models with control flow or data-dependent shapes run on the dynamic executor: whole
    ``execute`` calls are timed; dispatch counts and per-node GPU times are not collected."""
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        model.execute(feeds)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
        if progress:
            progress()
    return BenchResult(**common, **timing_stats(times, common["batch"]), dispatches=None,
                       encode_us_per_dispatch=None, peak_activation_bytes=None, executor="dynamic")
