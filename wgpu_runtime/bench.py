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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace

import numpy as np

from . import shader_modules, tuning
from .errors import BindingLimitError
from .graph import executor
from .graph import profile as profiling
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
    encode_us_per_dispatch: float | None   # host encoding of the plan's dispatches, ahead of the call or not
    weight_bytes: int
    peak_activation_bytes: int | None
    executor: str = "static"           # "static": one prepared plan; "dynamic": control flow; "chunked"
    gpu_ms_total: float | None = None
    top_ops: list = field(default_factory=list)   # [{op, count, gpu_ms, share}]
    model_format: str = "graph-model"  # or "layers-model"
    precision: str = "float32"         # or "float16" (precision.py)
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    stddev_ms: float = 0.0             # sample standard deviation of the timed runs (0 for one run)
    inferences_per_s: float = 0.0      # throughput: batch rows per second at the median time
    times_ms: list = field(default_factory=list)  # every timed run's wall time, in order
    nodes: list = field(default_factory=list)     # [{node, op, dispatches, gpu_ms}] in plan order (profiled run)
    adapter_info: dict = field(default_factory=dict)   # wgpu's adapter.info (vendor, device, description...)
    driver: str = ""                   # the adapter's driver description (e.g. "Mesa 22.3.6 (LLVM 15.0.6)")
    wgpu_version: str = ""
    loop_bounding: bool = False        # naga's loop bounding kept in the kernels (shader_modules.py; off by default)
    runtime_version: str = ""
    machine: dict = field(default_factory=dict)        # hostname, cpu, cores, os, python
    created: str = ""                  # UTC, ISO 8601
    first_new_process: dict | None = None   # bench --first-inference: {cold, warm} (first_inference.py)
    variants: list = field(default_factory=list)  # [{family, shape_class, candidates, chosen, source}]: kernel
    #                                     variants the plan chose; source "cache" (tuned), "default", "disabled"
    passed_over: list = field(default_factory=list)  # [{family, shape_class, variant, error}]: variants whose
    #                                     kernels did not compile on the adapter (Device.refused_variants)
    encode_waited_us: float | None = None   # encoding on each call's own path, inputs written -> submit
    #                                     (executor.py: the body is encoded ahead, only head and tail wait)
    concurrency: int | None = None     # --concurrency N: calls kept in flight (execute_async) for the figures below
    concurrent_inferences_per_s: float | None = None   # batch rows per second, N calls in flight (total / wall time)
    concurrent_median_ms: float | None = None          # median latency of one call with N in flight
    dynamic_batching: int | None = None  # --dynamic-batching B: the same N in flight, stacked into batches of <= B rows
    batched_inferences_per_s: float | None = None      # batch rows per second then (graph/batching.py)
    batched_median_ms: float | None = None             # median latency of one call then
    batched_mean_rows: float | None = None             # mean rows per batch the batcher ran
    record: str = RECORD
    schema: int = SCHEMA
    profile = None                     # not a field (not in to_dict): the profiled run's graph.profile.Profile

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
            "loop_bounding": shader_modules.loop_bounding(),
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


def _load(path, adapter, batch, feeds, precision="float32"):
    """(graph model to time, its feeds, model path, format) -- a layers model's traced GPU graph."""
    model = load_model(path, adapter, precision=precision)
    if hasattr(model, "execute"):                     # a graph model
        feeds = feeds or random_inputs(model.inputs, batch or 1)
        return model, feeds, str(model.artifacts.path), "graph-model"
    feeds = feeds or random_inputs(_layers_specs(model), batch or 1)
    xs = model._feeds(feeds)                           # checks names, shapes; casts to the input dtypes
    gm, traced = model.gpu_model(xs)
    return gm, dict(zip(traced.input_names, xs)), str(model.meta.get("path", path)), "layers-model"


def bench(path, adapter: str | None = None, runs: int = 20, warmup: int = 3, batch: int | None = None,
          profile: bool = True, progress=None, feeds: dict | None = None,
          concurrency: int | None = None, dynamic_batching: int | None = None,
          precision: str = "float32") -> BenchResult:
    """``feeds``: the inputs to time (default: seeded random inputs of ``batch`` rows, see
    inputs.random_inputs); with ``feeds`` the batch is their first dimension. ``progress()`` is
    called after each warm-up and timed run. ``concurrency``: also time ``runs`` calls with that
    many in flight (``execute_async``): throughput and per-call latency. ``dynamic_batching``
    (with ``concurrency``): then again with the model's dynamic batching on, batches of at most
    that many rows (a graph model's ``enable_dynamic_batching``). ``precision``: a graph model's
    arithmetic, "float32" or "float16" (wgpu_runtime/precision.py)."""
    _check_counts(runs, warmup, batch)
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1):
        raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    if dynamic_batching is not None and not concurrency:
        raise ValueError("dynamic batching is timed with calls in flight: give a concurrency too")
    t0 = time.perf_counter()
    model, feeds, model_path, model_format = _load(path, adapter, batch, feeds, precision)
    model.device.wait_idle()
    load_ms = (time.perf_counter() - t0) * 1e3
    dev = model.device
    ran = _rows(feeds)
    if batch is not None and batch != ran:
        logger.warning("batch %d not used: the inputs have %d rows (their first dimension); timing batch %d",
                       batch, ran, ran)

    compiled = dev.pipelines.compiled
    t0 = time.perf_counter()
    with tuning.recording() as points:          # the first inference builds the plan
        model.execute(feeds)
    first_ms = (time.perf_counter() - t0) * 1e3
    pipelines_compiled = dev.pipelines.compiled - compiled
    common = dict(model=model_path, adapter=dev.name, backend=dev.backend, batch=ran, load_ms=load_ms,
                  first_ms=first_ms, pipelines_compiled=pipelines_compiled, runs=runs, warmup=warmup,
                  weight_bytes=model.weight_bytes, model_format=model_format, precision=precision, **_environment(dev),
                  variants=_variants(points), passed_over=_passed_over(dev))
    if model.is_dynamic:
        return _bench_dynamic(model, feeds, runs, warmup, progress, common)
    try:
        plan, arrays = model.prepare(feeds)
    except BindingLimitError:           # a tensor over the binding limit: the batch runs in chunks
        result = _bench_dynamic(model, feeds, runs, warmup, progress, common, kind="chunked")
        if profile:
            _attach_profile(result, model, feeds)
        return result

    for _ in range(warmup):
        executor.run(dev, plan, arrays)
        if progress:
            progress()
    times, encode, waited = [], [], []
    for _ in range(runs):
        stats = {}
        t0 = time.perf_counter()
        plan, arrays = model.prepare(feeds)      # what predict() does: checks + plan cache lookup
        executor.run(dev, plan, arrays, stats)
        times.append((time.perf_counter() - t0) * 1e3)
        encode.append(stats["encode_s"])
        waited.append(stats["encode_waited_s"])
        if progress:
            progress()

    result = BenchResult(**common, **timing_stats(times, ran), dispatches=plan.dispatches,
                         encode_us_per_dispatch=statistics.median(encode) * 1e6 / max(1, plan.dispatches),
                         encode_waited_us=statistics.median(waited) * 1e6, peak_activation_bytes=plan.temp_bytes)
    if concurrency:
        result.concurrency = concurrency
        wall, lat = _in_flight(model, feeds, concurrency, warmup, runs)
        result.concurrent_inferences_per_s = ran * runs / wall
        result.concurrent_median_ms = statistics.median(lat) * 1e3
    if dynamic_batching:
        _time_batching(result, model, feeds, dynamic_batching, warmup, runs)
    if profile:
        _attach_profile(result, model, feeds)
    return result


def _attach_profile(result: BenchResult, model, feeds) -> None:
    """One profiled run (graph/profile.py): per-node and per-op GPU times into the result;
    the Profile itself (not in to_dict) for --profile and --trace."""
    result.profile = profiling.profile(model, feeds, warmup=False)
    if result.profile.dispatches:
        result.gpu_ms_total = result.profile.gpu_ms
        result.nodes, result.top_ops = result.profile.nodes, result.profile.ops
    elif result.profile.note:
        logger.info("%s: %s", model.device.name, result.profile.note)


def _time_batching(result: BenchResult, model, feeds, max_batch: int, warmup: int, runs: int) -> None:
    """The in-flight timing again with the model's dynamic batching on (graph/batching.py; a
    layers model is timed through its traced graph model, so it has one too)."""
    model.enable_dynamic_batching(max_batch)
    try:
        wall, lat = _in_flight(model, feeds, result.concurrency, warmup, runs)
        stats = model.dynamic_batching
    finally:
        model.disable_dynamic_batching()
    result.dynamic_batching = max_batch
    result.batched_inferences_per_s = result.batch * runs / wall
    result.batched_median_ms = statistics.median(lat) * 1e3
    batches = stats["batches"] + stats["alone"]
    result.batched_mean_rows = result.batch * stats["calls"] / batches if batches else None


def _in_flight(model, feeds, concurrency: int, warmup: int, runs: int) -> tuple[float, list[float]]:
    """Wall seconds of ``runs`` calls with ``concurrency`` in flight (after ``warmup`` such calls)
    and each call's latency in seconds."""
    import asyncio

    async def drive(n):
        left, lat = [n], []

        async def worker():
            while left[0] > 0:
                left[0] -= 1
                t0 = time.perf_counter()
                await model.execute_async(feeds)
                lat.append(time.perf_counter() - t0)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return lat

    asyncio.run(drive(max(warmup, 1) * concurrency))     # every call shape (and batch) seen first
    t0 = time.perf_counter()
    lat = asyncio.run(drive(runs))
    return time.perf_counter() - t0, lat


def _variants(points) -> list[dict]:
    """One row per distinct choice point of the plan (tuning.ChoicePoint)."""
    rows = {(p.family, p.shape_class): {"family": p.family, "shape_class": list(p.shape_class),
                                        "candidates": list(p.candidates), "chosen": p.chosen, "source": p.source}
            for p in points}
    return list(rows.values())


def _passed_over(dev) -> list[dict]:
    """The kernel variants passed over on the device because their kernels do not compile there."""
    return [{"family": family, "shape_class": list(shape_class), "variant": name, "error": str(why)}
            for (family, shape_class, name), why in tuning.refused(dev).items()]


def _bench_dynamic(model, feeds, runs, warmup, progress, common, kind: str = "dynamic") -> BenchResult:
    """Models with control flow or data-dependent shapes run on the dynamic executor (and a
    batch over the binding limit in chunks: ``kind="chunked"``): whole ``execute`` calls are
    timed; dispatch counts and per-node GPU times are not collected here."""
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        model.execute(feeds)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
        if progress:
            progress()
    return BenchResult(**common, **timing_stats(times, common["batch"]), dispatches=None,
                       encode_us_per_dispatch=None, peak_activation_bytes=None, executor=kind)
