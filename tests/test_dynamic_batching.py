"""Dynamic batching (graph/batching.py): concurrent calls from threads and coroutines stacked
into one batch, each caller getting its own rows; calls that cannot be batched run alone; a
model that mixes rows is refused when batching is enabled; bad input, cancellation and dispose
touch only the calls concerned.

Oracle: the same model called alone, one call at a time (batching off). Batched calls run a plan
for another batch size, which may pick another kernel variant (tuning is per shape class) and
so sum in another order: float32 rounding of 8- and 16-term dot products, rtol 1e-5 / atol 1e-6.
"""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime.bench import bench
from wgpu_runtime.errors import DisposedError, GraphError, InputError
from wgpu_runtime.format import write_artifacts
from fixtures.tiny_models import tiny_model

RTOL, ATOL = 1e-5, 1e-6
F = {"type": "DT_FLOAT"}


def _x(seed: int, rows: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (rows, 8)).astype(np.float32)


@pytest.fixture
def tiny(device, tmp_path):
    model = wr.load_graph_model(tiny_model(tmp_path / "tiny"), adapter=device)
    yield model
    model.dispose()


def _close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def test_threads_are_batched_and_each_caller_gets_its_own_rows(tiny):
    want = {s: tiny.predict(_x(s, 1 + s % 3)) for s in range(200)}
    tiny.enable_dynamic_batching(max_batch_size=8, max_delay_ms=20)
    got, errors = {}, []
    start = threading.Barrier(8)

    def worker(t):
        try:
            start.wait()
            for s in range(t * 25, (t + 1) * 25):
                got[s] = tiny.predict(_x(s, 1 + s % 3))
        except BaseException as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not errors, errors
    for s, w in want.items():
        assert got[s].shape == w.shape
        _close(got[s], w, f"call {s}")
    stats = tiny.dynamic_batching
    assert stats["calls"] == 200 and stats["batches"] > 0
    assert stats["batched_calls"] + stats["alone"] <= 200      # cancelled or run-alone calls are not counted twice


def test_coroutines_are_batched(tiny):
    want = [tiny.predict(_x(s, 1 + s % 2)) for s in range(12)]
    tiny.enable_dynamic_batching(max_batch_size=4, max_delay_ms=50)

    async def main():
        return await asyncio.gather(*(tiny.predict_async(_x(s, 1 + s % 2)) for s in range(12)))

    for s, (g, w) in enumerate(zip(asyncio.run(main()), want)):
        _close(g, w, f"call {s}")
    stats = tiny.dynamic_batching
    assert stats["batches"] >= 1 and stats["batched_calls"] >= 2
    assert stats["batches"] + stats["alone"] < 12           # fewer runs than calls


def test_calls_that_cannot_be_batched_run_alone(tiny):
    x, big = _x(1, 2), _x(2, 9)
    want, want_big = tiny.predict(x), tiny.predict(big)
    tiny.enable_dynamic_batching(max_batch_size=8)
    t = tiny.predict(wr.tensor(x, device=tiny.device))              # a device tensor in
    np.testing.assert_array_equal(t, want)
    np.testing.assert_array_equal(tiny.predict(x, on_device=True).numpy(), want)     # device tensors out
    np.testing.assert_array_equal(tiny.predict(big), want_big)      # more rows than a batch
    assert tiny.dynamic_batching["calls"] == 0
    _close(tiny.predict(x), want, "a batchable call alone")
    assert tiny.dynamic_batching["calls"] == 1


def test_a_bad_input_fails_only_its_caller(tiny):
    want = tiny.predict(_x(3))
    tiny.enable_dynamic_batching(max_batch_size=4, max_delay_ms=50)

    async def main():
        return await asyncio.gather(tiny.predict_async(_x(3)), tiny.predict_async(np.zeros((1, 7), np.float32)),
                                    tiny.predict_async(_x(3)), return_exceptions=True)

    good, bad, good2 = asyncio.run(main())
    assert isinstance(bad, InputError) and "must have shape [?, 8]" in str(bad)
    _close(good, want, "first")
    _close(good2, want, "third")


def test_a_cancelled_queued_call_is_dropped_and_the_others_run(tiny):
    want = [tiny.predict(_x(s)) for s in range(3)]
    tiny.enable_dynamic_batching(max_batch_size=8, max_delay_ms=300)

    async def main():
        tasks = [asyncio.ensure_future(tiny.predict_async(_x(s))) for s in range(3)]
        await asyncio.sleep(0.05)          # all three queued; the batch waits for more
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, cancelled, third = asyncio.run(main())
    assert isinstance(cancelled, asyncio.CancelledError)
    _close(first, want[0], "first")
    _close(third, want[2], "third")
    assert tiny.dynamic_batching["batched_calls"] == 2
    _close(tiny.predict(_x(1)), want[1], "after the cancel")


def test_dispose_fails_the_queued_calls_clearly(tiny):
    tiny.enable_dynamic_batching(max_batch_size=8, max_delay_ms=5000)
    results = []

    def call():
        try:
            results.append(tiny.predict(_x(4)))
        except BaseException as e:
            results.append(e)

    th = threading.Thread(target=call)
    th.start()
    for _ in range(500):
        if tiny.dynamic_batching["calls"]:
            break
        threading.Event().wait(0.01)
    tiny.dispose()
    th.join(timeout=60)
    assert not th.is_alive()
    assert len(results) == 1 and isinstance(results[0], DisposedError), results
    with pytest.raises(DisposedError):
        tiny.predict(_x(4))


def test_disable_runs_calls_alone_again(tiny):
    tiny.enable_dynamic_batching(max_batch_size=2)
    tiny.predict(_x(5))
    tiny.disable_dynamic_batching()
    assert tiny.dynamic_batching is None
    np.testing.assert_array_equal(tiny.predict(_x(5)), tiny.predict(_x(5)))
    with pytest.raises(ValueError, match="max_batch_size"):
        tiny.enable_dynamic_batching(max_batch_size=1)
    with pytest.raises(ValueError, match="max_delay_ms"):
        tiny.enable_dynamic_batching(max_delay_ms=-1)


def _mean_model(folder, batch: int = -1):
    """x[batch, 4] -> Mean over axis 0 (keep_dims) -> Identity: every output row mixes rows."""
    dims = {"dim": [{"size": str(batch)}, {"size": "4"}]}
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": F, "shape": {"shape": dims}}},
        {"name": "axis", "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}, "value": {"tensor": {}}}},
        {"name": "mean", "op": "Mean", "input": ["x", "axis"], "attr": {"T": F, "keep_dims": {"b": True}}},
        {"name": "y", "op": "Identity", "input": ["mean"], "attr": {"T": F}},
    ]
    model_json = {"format": "graph-model", "modelTopology": {"node": nodes, "library": {}, "versions": {}}}
    write_artifacts(folder, model_json, [[("axis", np.array([0], np.int32))]], shard_size=None)
    return folder


def test_a_model_that_mixes_rows_or_fixes_the_batch_is_refused(device, tmp_path):
    mixing = wr.load_graph_model(_mean_model(tmp_path / "mean"), adapter=device)
    with pytest.raises(GraphError, match="batch-separable.*'mean'"):
        mixing.enable_dynamic_batching()
    assert mixing.dynamic_batching is None
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(mixing.predict(x), x.mean(0, keepdims=True))     # unchanged
    fixed = wr.load_graph_model(_mean_model(tmp_path / "fixed", batch=2), adapter=device)
    with pytest.raises(GraphError, match="free batch dimension.*\\[2, 4\\]"):
        fixed.enable_dynamic_batching()


def test_bench_times_calls_in_flight_with_dynamic_batching(device, tmp_path):
    r = bench(tiny_model(tmp_path / "tiny"), adapter=device, runs=8, warmup=1, profile=False,
              concurrency=4, dynamic_batching=4)
    assert r.dynamic_batching == 4 and r.batched_inferences_per_s > 0 and r.batched_median_ms > 0
    assert 1 <= r.batched_mean_rows <= 4
    with pytest.raises(ValueError, match="concurrency"):
        bench(tiny_model(tmp_path / "tiny2"), adapter=device, runs=1, dynamic_batching=4)
