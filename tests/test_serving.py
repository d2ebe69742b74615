"""Serving: device tensors (in, out, chained models with no read-back), a caller's own wgpu
device and buffers, async calls in flight (with threads, cancelled mid-flight), dispose, bad
input, and TF.js's signature semantics (userDefinedMetadata.signature, structuredOutputKeys)
checked against real TF.js.

Oracles: the same model run with numpy in and out (a device-tensor path runs the very same
kernels on the very same bytes, so results are compared bit for bit), the models' numpy
reference (tiny models: float64 numpy), and TF.js 4.22 in Node for the signature semantics.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading

import numpy as np
import pytest
import wgpu

import wgpu_runtime as wr
from wgpu_runtime.device import find_adapter
from wgpu_runtime.format import write_artifacts
from wgpu_runtime.models import default_model_path
from fixtures.graph_models import fixture_path, load_io
from fixtures.tiny_models import tiny_model
from tfjs_harness import TFJS_DIR, encode_input, require_tfjs

F = {"type": "DT_FLOAT"}
STORAGE_SRC = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST


def head_model(folder):
    """x[-1, 4] -> MatMul(w[4, 3]) -> Tanh (signature z): fed by tiny_model's y[-1, 4]."""
    w = np.random.default_rng(11).uniform(-1, 1, (4, 3)).astype(np.float32)
    nodes = [
        {"name": "x", "op": "Placeholder",
         "attr": {"dtype": F, "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "4"}]}}}},
        {"name": "w", "op": "Const", "attr": {"dtype": F, "value": {"tensor": {}}}},
        {"name": "mm", "op": "MatMul", "input": ["x", "w"],
         "attr": {"T": F, "transpose_a": {"b": False}, "transpose_b": {"b": False}}},
        {"name": "Tanh", "op": "Tanh", "input": ["mm"], "attr": {"T": F}},
    ]
    spec = {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "-1"}, {"size": "4"}]}}
    model_json = {"format": "graph-model", "modelTopology": {"node": nodes, "library": {}, "versions": {}},
                  "signature": {"inputs": {"x": {**spec, "name": "x:0"}},
                                "outputs": {"z": {"name": "Tanh:0", "dtype": "DT_FLOAT"}}}}
    write_artifacts(folder, model_json, [[("w", w)]], shard_size=None)
    return folder, w


def _x(seed: int, rows: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (rows, 8)).astype(np.float32)


@pytest.fixture
def tiny(device, tmp_path):
    return wr.load_graph_model(tiny_model(tmp_path / "tiny"), adapter=device)


@pytest.fixture
def own_device(device):
    """A wgpu device the caller opens itself on the same adapter (WebGPU's default limits)."""
    return find_adapter(device.backend).request_device_sync()


# ------------------------------------------------------------------------------ device tensors
def test_chained_models_on_the_device_match_the_numpy_round_trip_with_no_read_back(device, tmp_path, tiny):
    head = wr.load_graph_model(head_model(tmp_path / "head")[0], device=device)
    x = _x(1)
    want = head.predict(tiny.predict(x))             # numpy between the models
    before = device.stats["readbacks"]
    y = tiny.predict(wr.tensor(x, device=device), on_device=True)
    z = head.predict(y, on_device=True)
    assert device.stats["readbacks"] == before       # nothing came back to the host
    assert isinstance(z, wr.Tensor) and z.shape == (3, 3) and z.dtype == "float32"
    np.testing.assert_array_equal(z.numpy(), want)  # same kernels, same bytes: bit for bit
    assert device.stats["readbacks"] == before + 1


def test_device_outputs_are_the_callers_buffers_not_the_plans_temps(tiny):
    a = tiny.predict(_x(2), on_device=True)
    b = tiny.predict(_x(3), on_device=True)         # the plan's buffers are reused by this call
    assert a.buffer is not b.buffer
    np.testing.assert_array_equal(a.numpy(), tiny.predict(_x(2)))
    np.testing.assert_array_equal(b.numpy(), tiny.predict(_x(3)))


def test_tensor_round_trip_keeps_dtype_and_value(device):
    for a in (np.arange(-6, 6, dtype=np.int32).reshape(3, 4), np.array([[True, False, True]]),
              np.linspace(-1, 1, 7, dtype=np.float32), np.zeros((0, 3), np.float32)):
        t = wr.tensor(a, device=device)
        got = t.numpy()
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)


def test_model_on_a_callers_gpu_device_with_a_callers_buffer(device, own_device, tmp_path, tiny):
    model = wr.load_graph_model(tiny_model(tmp_path / "own"), device=own_device)
    assert model.device.device is own_device and wr.get_device(own_device) is model.device
    x = _x(4)
    np.testing.assert_array_equal(model.predict(x), tiny.predict(x))
    # a buffer made by the caller's own wgpu code, as an input
    buf = own_device.create_buffer_with_data(data=x.tobytes(), usage=STORAGE_SRC)
    y = model.predict(wr.Tensor.from_buffer(buf, x.shape, "float32"), on_device=True)
    # ... and the output read by the caller's own wgpu code
    got = np.frombuffer(own_device.queue.read_buffer(y.buffer), np.float32).reshape(3, 4)
    np.testing.assert_array_equal(got, tiny.predict(x))
    t = wr.Tensor.from_buffer(buf, x.shape, "float32")
    t.dispose()                                       # a wrapped buffer stays the caller's
    assert own_device.queue.read_buffer(buf).tobytes() == x.tobytes()


def test_a_wgpu_runtime_device_may_be_passed(device, tmp_path):
    model = wr.load_model(tiny_model(tmp_path / "m"), device=device)
    assert model.device is device


# -------------------------------------------------------------------------------------- async
def test_async_calls_in_flight_match_sync_results(tiny):
    want = [tiny.predict(_x(s, 1 + s % 3)) for s in range(24)]

    async def main():
        return await asyncio.gather(*(tiny.predict_async(_x(s, 1 + s % 3)) for s in range(24)))

    got = asyncio.run(main())
    for s, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w, err_msg=f"call {s}")
    for plan in tiny._plans.values():                 # every staging buffer is back, unmapped
        assert plan.staging_ring and all(b.map_state == "unmapped" for b in plan.staging_ring)


def test_async_and_threads_mixed(tiny):
    want = {s: tiny.predict(_x(s, 1 + s % 2)) for s in range(160)}
    got, errors = {}, []

    def worker(t):
        try:
            for s in range(t * 20, (t + 1) * 20):
                got[s] = tiny.predict(_x(s, 1 + s % 2))
        except BaseException as e:
            errors.append(repr(e))

    async def main():
        async def one(s):
            got[s] = await tiny.predict_async(_x(s, 1 + s % 2))
        await asyncio.gather(*(one(s) for s in range(80, 160)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    asyncio.run(main())
    for th in threads:
        th.join(timeout=300)
    assert not errors, errors
    for s, w in want.items():
        np.testing.assert_array_equal(got[s], w, err_msg=f"call {s}")


def test_async_execute_names_outputs_and_returns_device_tensors(tiny):
    async def main():
        y = await tiny.execute_async({"x": _x(5)}, "y")
        t = await tiny.execute_async({"x": wr.tensor(_x(5), device=tiny.device)}, ["Identity:0"], on_device=True)
        return y, t

    y, t = asyncio.run(main())
    np.testing.assert_array_equal(y, tiny.predict(_x(5)))
    np.testing.assert_array_equal(t[0].numpy(), y)


@pytest.mark.parametrize("which", ["tiny", "mobilenet"])
def test_cancelled_async_calls_leave_the_model_usable(device, tiny, which):
    """Calls cancelled at every phase: before they start, while submitting (in the worker thread),
    while awaiting the read-back (the embedded MobileNetV2 takes tens of ms on the GPU)."""
    if which == "tiny":
        model, x = tiny, _x(6)
    else:
        model = wr.load_graph_model(default_model_path(), device=device)
        x = np.random.default_rng(6).random((1, 128, 128, 3), dtype=np.float32)
    want = model.predict(x)

    async def main():
        cancelled = 0
        for i, delay in enumerate([0, 0, 0.0005, 0.001, 0.003, 0.01, 0.02, 0.04, 0.08] * 2):
            await asyncio.sleep(0.05)             # the cancelled call's GPU work drains: the next one
            model.device.wait_idle()              # submits at once, so later delays reach its read-back
            task = asyncio.ensure_future(model.predict_async(x))
            if i % 2:
                await asyncio.sleep(delay)
            task.cancel()
            try:
                np.testing.assert_array_equal(await task, want)     # it finished before the cancel
            except asyncio.CancelledError:
                cancelled += 1
        for _ in range(500):                  # the abandoned maps complete: buffers come back
            ring = next(iter(model._plans.values())).staging_ring
            if ring and all(b.map_state == "unmapped" for b in ring):
                break
            await asyncio.sleep(0.01)
        return cancelled, await model.predict_async(x)

    cancelled, got = asyncio.run(main())
    assert cancelled > 0
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.predict(x), want)
    ring = next(iter(model._plans.values())).staging_ring
    assert ring and all(b.map_state == "unmapped" for b in ring)


# ----------------------------------------------------------------------- dispose and bad input
def test_dispose_frees_the_model_and_later_use_is_a_clear_error(device, tmp_path):
    model = wr.load_graph_model(tiny_model(tmp_path / "d"), device=device)
    model.predict(_x(7))
    assert model.weight_bytes > 0
    model.dispose()
    model.dispose()                                   # idempotent
    assert model.disposed and model.weight_bytes == 0 and not model._plans
    for call in (lambda: model.predict(_x(7)), lambda: model.execute({"x": _x(7)}),
                 lambda: model.prepare({"x": _x(7)}), lambda: asyncio.run(model.predict_async(_x(7)))):
        with pytest.raises(wr.DisposedError, match="disposed"):
            call()


def test_disposed_tensor(tiny):
    t = wr.tensor(_x(8), device=tiny.device)
    t.dispose()
    t.dispose()
    with pytest.raises(wr.DisposedError, match="tensor has been disposed"):
        t.numpy()
    with pytest.raises(wr.DisposedError):
        tiny.predict(t)
    np.testing.assert_array_equal(tiny.predict(_x(8)), tiny.predict(_x(8)))


def test_bad_device_tensors_are_clear_errors_and_the_model_stays_usable(device, own_device, tiny):
    x = _x(9)
    want = tiny.predict(x)
    other = wr.tensor(x, device=own_device)           # same adapter, another wgpu device
    with pytest.raises(wr.TensorError, match="another device"):
        tiny.predict(other)
    with pytest.raises(wr.InputError, match="must be float32, got a int32 device tensor"):
        tiny.predict(wr.tensor(x.astype(np.int32), device=device))
    with pytest.raises(wr.InputError, match=r"must have shape \[\?, 8\], got a device tensor of shape \(3, 4\)"):
        tiny.predict(wr.tensor(x[:, :4], device=device))
    with pytest.raises(wr.TensorError, match="float32, int32 or bool"):
        wr.tensor(np.array(["a"]), device=device)
    small = device.device.create_buffer(size=16, usage=STORAGE_SRC)
    with pytest.raises(wr.TensorError, match="needs 96 bytes"):
        wr.Tensor.from_buffer(small, (3, 8), "float32")
    no_src = device.device.create_buffer(size=96, usage=wgpu.BufferUsage.STORAGE)
    with pytest.raises(wr.TensorError, match="STORAGE and COPY_SRC"):
        wr.Tensor.from_buffer(no_src, (3, 8), "float32")
    with pytest.raises(wr.TensorError, match="another wgpu device"):
        wr.Tensor.from_buffer(small, (2,), "float32", device=own_device)
    with pytest.raises(wr.TensorError, match="dtype"):
        wr.Tensor.from_buffer(small, (2,), "float64")
    # a caller's buffer destroyed by its owner: a submit reading it would abort the process
    buf = device.device.create_buffer_with_data(data=x.tobytes(), usage=STORAGE_SRC)
    t = wr.Tensor.from_buffer(buf, x.shape, "float32")
    buf.destroy()
    with pytest.raises(wr.DisposedError, match="destroyed"):
        tiny.predict(t)
    out = tiny.predict(x, on_device=True)
    out.buffer.destroy()
    with pytest.raises(wr.DisposedError, match="destroyed"):
        out.numpy()
    np.testing.assert_array_equal(tiny.predict(x), want)


# ------------------------------------------------------------- TF.js signature semantics
_PREDICT_JS = r"""
const fs = require('fs'); const path = require('path');
const tf = require('@tensorflow/tfjs');
const {fileHandler} = require('./common.js');
const ARRAYS = {float32: Float32Array, int32: Int32Array};
(async () => {
  await tf.setBackend('cpu');
  const spec = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
  const model = await tf.loadGraphModel(fileHandler(fs, path, spec.model_dir));
  const feed = {};
  for (const i of spec.inputs) {
    const raw = fs.readFileSync(i.file); const copy = new Uint8Array(raw.byteLength); copy.set(raw);
    feed[i.name] = tf.tensor(new ARRAYS[i.dtype](copy.buffer), i.shape, i.dtype);
  }
  const out = model.predict(feed);
  const res = {outputNodes: model.outputNodes, kind: Array.isArray(out) ? 'list' : (out instanceof tf.Tensor ? 'tensor' : 'dict'), outputs: []};
  const entries = res.kind === 'dict' ? Object.entries(out) : (res.kind === 'list' ? out.map((t, i) => [String(i), t]) : [['0', out]]);
  for (const [key, t] of entries) res.outputs.push({key, shape: t.shape, data: Array.from(await t.data())});
  fs.writeFileSync(spec.out, JSON.stringify(res));
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"""


def _tfjs_predict(model_dir, inputs: dict, tmp_path) -> dict:
    """TF.js's ``model.predict`` (not execute): its kind (dict/list/tensor), keys and values."""
    require_tfjs()
    specs = []
    for k, (name, x) in enumerate(inputs.items()):
        dtype, x = encode_input(x)
        (tmp_path / f"in{k}.bin").write_bytes(x.tobytes())
        specs.append({"name": name, "dtype": dtype, "shape": list(x.shape), "file": str(tmp_path / f"in{k}.bin")})
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model_dir": str(model_dir), "inputs": specs, "out": str(tmp_path / "out.json")}))
    proc = subprocess.run(["node", "-e", _PREDICT_JS, str(spec)], cwd=TFJS_DIR, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


def _metadata_variant(tmp_path, structured: list[str] | None):
    """multi_io with its signature moved into userDefinedMetadata, outputs reordered (logits
    first; the top-level order was features, logits), and optionally structuredOutputKeys."""
    folder = tmp_path / "variant"
    shutil.copytree(fixture_path("multi_io"), folder)
    model = json.loads((folder / "model.json").read_text())
    sig = model.pop("signature")
    sig["outputs"] = {k: sig["outputs"][k] for k in ("logits", "features")}
    meta = {"signature": sig}
    if structured is not None:
        meta["structuredOutputKeys"] = structured
    model["userDefinedMetadata"] = meta
    (folder / "model.json").write_text(json.dumps(model))
    return folder


@pytest.mark.parametrize("structured", [None, ["first", "second"]], ids=["metadata-signature", "structured-keys"])
def test_signature_from_user_defined_metadata_matches_tfjs(device, tmp_path, structured):
    folder = _metadata_variant(tmp_path, structured)
    inputs, _ = load_io("multi_io")
    js = _tfjs_predict(folder, inputs, tmp_path)
    model = wr.load_graph_model(folder, device=device)
    assert [s.name for s in model.outputs] == ["Identity_1:0", "Identity:0"]   # logits, features
    ours = model.predict(inputs)
    if structured is None:
        assert js["kind"] == "list" and isinstance(ours, list)
        ours = {str(i): v for i, v in enumerate(ours)}
    else:
        assert js["kind"] == "dict" and isinstance(ours, dict)
    assert list(ours) == [o["key"] for o in js["outputs"]]
    for o in js["outputs"]:
        want = np.asarray(o["data"], np.float32).reshape(o["shape"])
        # fp32 through two small layers on both sides (cf. test_models FP32_SHALLOW)
        np.testing.assert_allclose(ours[o["key"]], want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))
    # execute keeps returning a list, as TF.js's execute does
    assert isinstance(model.execute(inputs), list)


# ------------------------------------------------------------------- layers models, bench
def test_layers_model_on_a_callers_device(device, own_device):
    from fixtures.layers_models import inputs, layers_fixture, load_npz

    folder = layers_fixture("mlp")
    xs = inputs(load_npz("mlp"))
    want = wr.load_layers_model(folder, adapter=device).predict(xs)
    model = wr.load_layers_model(folder, device=own_device)
    np.testing.assert_array_equal(model.predict(xs), want)     # same adapter, same kernels


def test_bench_reports_throughput_with_calls_in_flight(device, tmp_path):
    from wgpu_runtime.bench import bench

    r = bench(tiny_model(tmp_path / "b"), adapter=device, runs=6, warmup=1, profile=False, concurrency=3)
    assert r.concurrency == 3 and r.concurrent_inferences_per_s > 0 and r.concurrent_median_ms > 0
    assert r.to_dict()["concurrent_inferences_per_s"] == r.concurrent_inferences_per_s
    with pytest.raises(ValueError, match="concurrency"):
        bench(tiny_model(tmp_path / "c"), adapter=device, runs=1, concurrency=0)


def test_cli_bench_concurrency(device, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "bench", str(tiny_model(tmp_path / "m")),
                           "--adapter", device.backend, "--runs", "4", "--warmup", "1", "--concurrency", "2", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert r["concurrency"] == 2 and r["concurrent_inferences_per_s"] > 0
    bad = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "bench", "--concurrency", "0"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and "--concurrency" in bad.stderr


def test_readme_serving_example_runs(tmp_path):
    """README's Serving code block, run as written (the default adapter)."""
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Serving"):]
    code = section[section.index("```python") + len("```python"): section.index("```", section.index("```python") + 9)]
    script = tmp_path / "serving_example.py"
    script.write_text(code + "\nprint('ok', probs.shape, y.shape, len(ys))\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok (1, 1000) (1, 1000) 4")
