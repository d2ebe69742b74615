"""Models may be called from many threads at once: every caller gets its own correct result,
for one model shared by 8 threads and for two models on one device (both adapters). Before
Device.lock, 4 threads sharing one model aborted the process (a staging buffer still mapped)."""
import threading

import numpy as np

import wgpu_runtime as wr
from wgpu_runtime.models import default_model_path
from fixtures.tiny_models import tiny_model

THREADS, CALLS = 8, 200


def _inputs(seed: int, rows: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (rows, 8)).astype(np.float32)


def _hammer(call, seeds_of):
    """Run ``call(seed)`` for every seed of every thread, all threads at once; {seed: output}."""
    results, errors = {}, []
    start = threading.Barrier(THREADS)

    def worker(t):
        try:
            start.wait()
            for seed in seeds_of(t):
                results[seed] = call(seed)
        except BaseException as e:      # reported below, with the thread
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a thread did not finish"
    assert not errors, errors
    return results


def test_one_model_from_eight_threads_matches_single_threaded_results(device, tmp_path):
    model = wr.load_graph_model(tiny_model(tmp_path / "tiny"), adapter=device.backend)
    seeds = range(THREADS * CALLS)
    # rows vary with the seed: several plans (input shapes) are in use at once
    expected = {s: model.predict(_inputs(s, 1 + s % 4)) for s in seeds}
    got = _hammer(lambda s: model.predict(_inputs(s, 1 + s % 4)), lambda t: range(t * CALLS, (t + 1) * CALLS))
    assert sorted(got) == list(seeds)
    for s in seeds:
        np.testing.assert_array_equal(got[s], expected[s], err_msg=f"call {s}")


def test_two_models_on_one_device_from_many_threads(device, tmp_path):
    a = wr.load_graph_model(tiny_model(tmp_path / "a"), adapter=device.backend)
    b = wr.load_graph_model(default_model_path(), adapter=device.backend)
    images = {s: np.random.default_rng(s).random((1, 128, 128, 3), dtype=np.float32) for s in range(8)}
    expected = {s: (a.predict(_inputs(s)) if s % 2 else b.predict(images[s % 8])) for s in range(THREADS * 8)}

    def call(s):
        return a.predict(_inputs(s)) if s % 2 else b.predict(images[s % 8])

    got = _hammer(call, lambda t: range(t * 8, (t + 1) * 8))
    for s, want in expected.items():
        np.testing.assert_array_equal(got[s], want, err_msg=f"call {s}")
