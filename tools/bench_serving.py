"""Serving benchmarks (docs/benchmarks.md): read-back of a big output, two models chained on the
device vs a numpy round trip, the device lock's cost on one thread, and calls in flight.

    .venv/bin/python tools/bench_serving.py [--adapter vulkan] [--repeat 5] [--runs 30] [PARTS...]

PARTS: readback, chain, lock, inflight (default: all). Each figure is the median over --runs
calls, and each part is repeated --repeat times: the medians of the repeats are printed with
their min and max (the machine is shared and noisy). ``readback`` uses ``predict`` alone, so it
also runs against an older checkout (PYTHONPATH=that/tree) for before/after figures.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))          # fixtures.tiny_models: the hand-written tiny model

import wgpu_runtime as wr  # noqa: E402
from wgpu_runtime.format import write_artifacts  # noqa: E402
from wgpu_runtime.models import default_model_path  # noqa: E402

BIG = (2175, 1000)          # 8.7 MB of float32


def relu_model(folder: Path, shape=BIG) -> Path:
    """One Relu on x[shape]: an 8.7 MB output for the read-back and chain figures."""
    f = {"type": "DT_FLOAT"}
    dims = [{"size": str(d)} for d in shape]
    nodes = [{"name": "x", "op": "Placeholder", "attr": {"dtype": f, "shape": {"shape": {"dim": dims}}}},
             {"name": "Relu", "op": "Relu", "input": ["x"], "attr": {"T": f}}]
    model_json = {"format": "graph-model", "modelTopology": {"node": nodes, "library": {}, "versions": {}}}
    write_artifacts(folder, model_json, [], shard_size=None)
    return folder


def median_ms(call, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def report(name: str, values: list[float], unit: str) -> None:
    print(f"{name:58s} median {statistics.median(values):9.2f} {unit}  "
          f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} repeats)", flush=True)


def _two_copies(device, sub) -> list:
    """The read-back before this change, for comparison: read_mapped(copy=True) (a host copy of
    the whole staging buffer), then from_device_bytes (a second copy per output)."""
    from wgpu_runtime.dtypes import from_device_bytes

    sub.promise.sync_wait()
    device.count_readback()
    data = sub.staging.read_mapped(copy=True)
    out = [from_device_bytes(data[off: off + t.buf.nbytes], t.dtype, t.shape)
           for t, off in zip(sub.plan.outputs, sub.plan.staging_offsets)]
    with device.lock:
        sub.staging.unmap()
        sub.plan.staging_ring.append(sub.staging)
    return out


def part_readback(args, tmp: Path) -> None:
    from wgpu_runtime.graph import executor

    model = wr.load_graph_model(relu_model(tmp / "relu"), adapter=args.adapter)
    dev = model.device
    x = np.random.default_rng(0).standard_normal(BIG, dtype=np.float32)
    plan, feeds = model.prepare({"x": x})

    def timed(read):
        def call():
            with dev.lock:
                sub = executor.submit(dev, plan, feeds)
            sub.promise.sync_wait()              # GPU work done: only the read-back is timed
            t0 = time.perf_counter()
            out = read(dev, sub)
            call.times.append(time.perf_counter() - t0)
            return out
        call.times = []
        return call

    assert np.array_equal(timed(executor.wait)()[0], timed(_two_copies)()[0])
    one, two = [], []
    for _ in range(args.repeat):              # interleaved, so that drift hits both alike
        for read, acc in ((executor.wait, one), (_two_copies, two)):
            call = timed(read)
            median_ms(call, args.runs)
            acc.append(statistics.median(call.times[3:]) * 1e3)
    report("read-back of 8.7 MB, two host copies (before)", two, "ms")
    report("read-back of 8.7 MB, one host copy (now)", one, "ms")
    report("predict, one Relu, 8.7 MB in and out (now)",
           [median_ms(lambda: model.predict(x), args.runs) for _ in range(args.repeat)], "ms")


def part_chain(args, tmp: Path) -> None:
    a = wr.load_graph_model(relu_model(tmp / "a"), adapter=args.adapter)
    b = wr.load_graph_model(relu_model(tmp / "b"), device=a.device)
    x = np.random.default_rng(1).standard_normal(BIG, dtype=np.float32)
    assert np.array_equal(b.predict(a.predict(x)), b.predict(a.predict(wr.tensor(x, a.device), on_device=True)))

    def device_chain():
        y = a.predict(wr.tensor(x, a.device), on_device=True)
        return b.predict(y, on_device=True).numpy()

    rt = [median_ms(lambda: b.predict(a.predict(x)), args.runs) for _ in range(args.repeat)]
    dev = [median_ms(device_chain, args.runs) for _ in range(args.repeat)]
    report("two Relu models, numpy between them (8.7 MB)", rt, "ms")
    report("two Relu models chained on the device (8.7 MB)", dev, "ms")


class _NoLock:
    """Stands in for Device.lock to measure what the lock costs on one thread."""
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def part_lock(args, tmp: Path) -> None:
    from fixtures.tiny_models import tiny_model

    for name, path, x in (("tiny MLP", tiny_model(tmp / "tiny"), np.ones((1, 8), np.float32)),
                          ("embedded MobileNetV2", default_model_path(),
                           np.random.default_rng(2).random((1, 128, 128, 3), dtype=np.float32))):
        model = wr.load_graph_model(path, adapter=args.adapter)
        dev = model.device
        real = dev.lock
        with_lock, without = [], []
        for _ in range(args.repeat):          # interleaved, so that drift hits both alike
            dev.lock = real
            with_lock.append(median_ms(lambda: model.predict(x), args.runs))
            dev.lock = _NoLock()
            without.append(median_ms(lambda: model.predict(x), args.runs))
        dev.lock = real
        report(f"{name}: predict with Device.lock", with_lock, "ms")
        report(f"{name}: predict without a lock", without, "ms")
        print(f"{'':58s} difference {100 * (statistics.median(with_lock) / statistics.median(without) - 1):+.1f} %")
        # the lock's own cost, free of the machine's noise: one uncontended enter/exit per predict
        n = 200_000
        t0 = time.perf_counter()
        for _ in range(n):
            with real:
                pass
        per_ns = (time.perf_counter() - t0) / n * 1e9
        print(f"{'':58s} Device.lock enter/exit {per_ns:.0f} ns (one per predict): "
              f"{100 * per_ns / 1e6 / statistics.median(without):.4f} % of the median call")


def part_inflight(args, tmp: Path) -> None:
    from fixtures.tiny_models import tiny_model

    for name, path, x in (("tiny MLP", tiny_model(tmp / "tiny2"), np.ones((1, 8), np.float32)),
                          ("embedded MobileNetV2", default_model_path(),
                           np.random.default_rng(3).random((1, 128, 128, 3), dtype=np.float32))):
        model = wr.load_graph_model(path, adapter=args.adapter)
        one, four, threads, batched, batched_threads = [], [], [], [], []
        for _ in range(args.repeat):          # interleaved, so that drift hits all alike
            one.append(_rate(model, x, 1, args.runs))
            four.append(_rate(model, x, 4, args.runs))
            threads.append(_thread_rate(model, x, 4, args.runs))
            model.enable_dynamic_batching(max_batch_size=4)       # graph/batching.py, default delay
            batched.append(_rate(model, x, 4, args.runs))
            batched_threads.append(_thread_rate(model, x, 4, args.runs))
            model.disable_dynamic_batching()
        report(f"{name}: 1 call in flight (predict_async)", one, "inferences/s")
        report(f"{name}: 4 calls in flight (predict_async)", four, "inferences/s")
        report(f"{name}: 4 threads calling predict", threads, "inferences/s")
        report(f"{name}: 4 in flight, dynamic batching <= 4", batched, "inferences/s")
        report(f"{name}: 4 threads, dynamic batching <= 4", batched_threads, "inferences/s")
        for what, values in (("4 in flight", four), ("4 threads", threads), ("4 in flight, batched", batched),
                             ("4 threads, batched", batched_threads)):
            print(f"{'':58s} {what} / 1 in flight: {statistics.median(v / o for v, o in zip(values, one)):.2f}x "
                  "(median of the repeats' ratios)")


def _rate(model, x, n: int, runs: int) -> float:
    async def drive(count):
        left = [count]

        async def worker():
            while left[0] > 0:
                left[0] -= 1
                await model.predict_async(x)
        await asyncio.gather(*(worker() for _ in range(n)))

    asyncio.run(drive(3 * n))            # warm: the plans of every batch size are built and run
    t0 = time.perf_counter()
    asyncio.run(drive(runs))
    return runs / (time.perf_counter() - t0)


def _thread_rate(model, x, n: int, runs: int) -> float:
    per = max(1, runs // n)
    model.predict(x)
    threads = [threading.Thread(target=lambda: [model.predict(x) for _ in range(per)]) for _ in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * n / (time.perf_counter() - t0)


PARTS = {"readback": part_readback, "chain": part_chain, "lock": part_lock, "inflight": part_inflight}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("parts", nargs="*", metavar="PART", help=f"{', '.join(PARTS)} (default: all)")
    p.add_argument("--adapter", default="vulkan")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args(argv)
    unknown = [x for x in args.parts if x not in PARTS]
    if unknown:
        p.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        dev = wr.get_device(args.adapter)
        print(f"# {dev.name}; wgpu-runtime {wr.__version__}", flush=True)
        for name in args.parts or PARTS:
            PARTS[name](args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
