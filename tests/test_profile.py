"""Seeing inside: ``model.profile`` (GPU time per node from timestamp queries, host time per
phase, a table, a dict, a Chrome-trace JSON file), ``model.memory_info()``, and
``bench --profile / --trace``.

No timings are asserted (the machine is shared): only that every dispatch and phase is there,
that the sums agree, and that the files have the structure Perfetto and chrome://tracing read.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from wgpu_runtime import get_device
from wgpu_runtime.device import find_adapter
from wgpu_runtime.format import load_artifacts
from wgpu_runtime.graph.model import GraphModel, load_graph_model
from wgpu_runtime.graph.profile import NO_TIMESTAMPS
from wgpu_runtime.ops import tiled

from conftest import ADAPTERS
from test_any_size import RTOL, ATOL, Builder, _cnn

HOST_PHASES = ["plan", "write inputs", "encode", "submit", "read back"]


def _two_matmuls(folder):
    """x[-1,8] -> MatMul -> Softmax -> MatMul -> Softmax: two nodes of each op."""
    rng = np.random.default_rng(4)
    w1, w2 = rng.uniform(-1, 1, (8, 16)).astype(np.float32), rng.uniform(-1, 1, (16, 4)).astype(np.float32)
    g = Builder((8,))
    no_t = {"transpose_a": {"b": False}, "transpose_b": {"b": False}}
    g.op("m1", "MatMul", "x", g.const("w1", w1), **no_t)
    g.op("s1", "Softmax")
    g.op("m2", "MatMul", "s1", g.const("w2", w2), **no_t)
    g.op("sm", "Softmax")
    return g.save(folder), (w1, w2)


def _check_trace(path, dispatches: int, host_phases: list[str]) -> dict:
    """The Chrome trace event format: complete events (ph X: name, ts, dur in µs, pid, tid) and
    metadata events naming the tracks."""
    with open(path, encoding="utf-8") as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    assert isinstance(events, list)
    for e in events:
        assert e["ph"] in ("X", "M") and isinstance(e["name"], str) and isinstance(e["pid"], int)
        assert isinstance(e["tid"], int)
        if e["ph"] == "X":
            assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float)) and e["dur"] >= 0
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert set(tracks) == {"host", "GPU"}
    gpu = [e for e in events if e["ph"] == "X" and e["tid"] == tracks["GPU"]]
    host = [e for e in events if e["ph"] == "X" and e["tid"] == tracks["host"]]
    assert len(gpu) == dispatches
    assert [e["name"] for e in host] == host_phases
    starts = [e["ts"] for e in gpu]
    assert starts == sorted(starts)                 # one compute pass after another
    return trace


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_profile_per_node_and_per_phase(tmp_path, adapter):
    folder, (w1, w2) = _two_matmuls(tmp_path / "m")
    model = load_graph_model(folder, adapter)
    x = np.random.default_rng(5).uniform(-1, 1, (6, 8)).astype(np.float32)
    prof = model.profile(x)
    assert prof.note == "" and prof.chunks == 1
    nodes = prof.nodes
    plan, _ = model.prepare({"x": x})
    assert [n["node"] for n in nodes] == list(dict.fromkeys(st.node for st in plan.steps))
    assert [n["node"] for n in nodes] == ["m1", "s1", "m2", "sm"]      # per node, not per op: two of each
    assert [n["op"] for n in nodes] == ["MatMul", "Softmax", "MatMul", "Softmax"]
    assert sum(n["dispatches"] for n in nodes) == plan.dispatches and len(prof.dispatches) == len(plan.steps)
    assert all(n["gpu_ms"] >= 0 for n in nodes)
    assert prof.gpu_ms == pytest.approx(sum(n["gpu_ms"] for n in nodes))
    matmul = next(o for o in prof.ops if o["op"] == "MatMul")
    assert matmul["gpu_ms"] == pytest.approx(nodes[0]["gpu_ms"] + nodes[2]["gpu_ms"])
    assert sum(o["share"] for o in prof.ops) == pytest.approx(1.0)
    assert list(prof.host_ms) == HOST_PHASES
    d = prof.to_dict()
    json.dumps(d)                                                       # plain JSON types
    assert d["nodes"] == nodes and d["gpu_ms"] == prof.gpu_ms and set(d["host_ms"]) == set(HOST_PHASES)
    table = prof.table()
    assert str(prof) == table
    for n in ("m1", "s1", "m2", "sm", "GPU total", "host: plan"):
        assert n in table
    assert "(2 more nodes)" in prof.table(top=2)
    prof.save_trace(tmp_path / "trace.json")
    _check_trace(tmp_path / "trace.json", len(plan.steps), HOST_PHASES)
    # profiling leaves the model as it was: the next inference is still right
    np.testing.assert_allclose(model.predict(x), _softmax(_softmax(x.astype(np.float64) @ w1) @ w2),
                               rtol=RTOL, atol=ATOL)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_without_timestamp_queries_gets_host_times_and_a_note(tmp_path, adapter):
    """A real device opened without the timestamp-query feature."""
    dev = get_device(find_adapter(adapter).request_device_sync(required_features=[]))
    assert not dev.has_timestamps
    folder, _ = _two_matmuls(tmp_path / "m")
    model = load_graph_model(folder, device=dev)
    prof = model.profile(np.ones((2, 8), np.float32))
    assert prof.note == NO_TIMESTAMPS and prof.dispatches == [] and prof.gpu_ms is None and prof.nodes == []
    assert list(prof.host_ms) == HOST_PHASES
    assert NO_TIMESTAMPS in prof.table()
    prof.save_trace(tmp_path / "trace.json")
    _check_trace(tmp_path / "trace.json", 0, HOST_PHASES)


def test_profile_of_a_batch_run_in_chunks(tmp_path):
    """On a device with a 1 MiB binding limit the batch runs in chunks: each is profiled."""
    a = find_adapter("vulkan")
    dev = get_device(a.request_device_sync(required_features=["timestamp-query"],
                                           required_limits={"max-storage-buffer-binding-size": 1 << 20}))
    folder, oracle = _cnn(tmp_path / "cnn", np.random.default_rng(6))
    model = load_graph_model(folder, device=dev)
    x = np.random.default_rng(7).uniform(-1, 1, (20, 32, 32, 3)).astype(np.float32)
    prof = model.profile(x)
    rows = model.memory_info()["chunked"][0]["rows_per_chunk"]
    assert prof.chunks == -(-20 // rows) > 1
    plan, _ = model.prepare({"x": x[:rows]})
    assert len(prof.dispatches) == prof.chunks * len(plan.steps)
    assert sum(n["dispatches"] for n in prof.nodes) == plan.dispatches
    assert [h["phase"] for h in prof.host] == ["plan"] + HOST_PHASES[1:] * prof.chunks
    prof.save_trace(tmp_path / "trace.json")
    _check_trace(tmp_path / "trace.json", len(prof.dispatches), ["plan"] + HOST_PHASES[1:] * prof.chunks)
    np.testing.assert_allclose(model.predict(x), oracle(x), rtol=RTOL, atol=ATOL)


def test_memory_info(tmp_path, device):
    folder, (w1, w2) = _two_matmuls(tmp_path / "m")
    model = GraphModel(load_artifacts(folder), device, plan_cache_size=4)
    # a matmul's B is preloaded except where its texture variant comes first (software adapters:
    # OpDef.texture_inputs); these products are too small for it, so their plans upload B
    preloaded = 0 if tiled.texture_first(device) else w1.nbytes + w2.nbytes
    assert model.memory_info()["plans"] == [] and model.memory_info()["weights_bytes"] == preloaded
    for n in (3, 300):
        model.predict(np.ones((n, 8), np.float32))
    info = model.memory_info()
    json.dumps(info)
    assert {"w1", "w2"} <= set(model._buffers) and info["weights_bytes"] >= w1.nbytes + w2.nbytes
    assert [p["inputs"] for p in info["plans"]] == [{"x": [3, 8]}, {"x": [300, 8]}]
    big = info["plans"][1]
    assert big["input_bytes"] == 300 * 8 * 4 and big["staging_bytes"] >= 300 * 4 * 4
    # the 300-row plan's activations: at least its widest intermediate (300 x 16), pooled by liveness
    assert 300 * 16 * 4 <= big["activation_bytes"] and big["pooled_buffers"] >= 1
    assert info["peak_activation_bytes"] == big["activation_bytes"] > info["plans"][0]["activation_bytes"]
    assert info["activation_bytes"] == sum(p["activation_bytes"] for p in info["plans"])
    assert info["plan_cache_size"] == 4 and info["chunked"] == [] and info["max_binding_bytes"] == device.max_binding_bytes


def test_bench_profile_and_trace(tmp_path):
    folder, _ = _two_matmuls(tmp_path / "m")
    trace = tmp_path / "trace.json"
    out = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "bench", str(folder), "--runs", "2",
                          "--warmup", "0", "--batch", "4", "--profile", "--trace", str(trace)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("node "))
    assert lines[start].split() == ["node", "op", "dispatches", "gpu", "ms", "share"]
    rows = [line.split() for line in lines[start + 1:start + 5]]
    assert [r[:2] for r in rows] == [["m1", "MatMul"], ["s1", "Softmax"], ["m2", "MatMul"], ["sm", "Softmax"]]
    t = _check_trace(trace, sum(int(r[2]) for r in rows), HOST_PHASES)     # one GPU event per dispatch
    assert "llvmpipe" in t["otherData"]["adapter"]


def test_bench_of_a_batch_over_the_limit(tmp_path):
    """lavapipe's 128 MiB binding limit: 8200 rows of 4096 floats (134.3 MB) run in chunks;
    bench times whole runs and profiles each chunk."""
    g = Builder((4096,))
    g.op("relu", "Relu", "x")
    folder = g.save(tmp_path / "m")
    out = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "bench", str(folder), "--adapter", "llvmpipe",
                          "--runs", "1", "--warmup", "0", "--batch", "8200", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["executor"] == "chunked" and r["batch"] == 8200 and len(r["times_ms"]) == 1
    assert [n["node"] for n in r["nodes"]] == ["relu"]
    assert r["gpu_ms_total"] == pytest.approx(sum(n["gpu_ms"] for n in r["nodes"]))
