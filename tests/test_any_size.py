"""Any size: a batch whose tensors exceed the adapter's storage-binding limit runs in chunks
along the batch when the graph is batch-separable, and fails at plan time, naming the node, its
tensor's bytes and the limit, when it is not (graph/chunking.py). The plan cache size is
configurable.

Oracles: float64 numpy written in this file (not the registry's references). Most tests run on a
real device opened with a 1 MiB storage-binding limit (a limit WebGPU lets a caller request; real
GPUs have their own), so over-limit batches stay small and fast on both adapters; one test uses
lavapipe's own 128 MiB limit with a real over-limit batch.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest

from wgpu_runtime import get_device, tuning
from wgpu_runtime.device import find_adapter
from wgpu_runtime.errors import BindingLimitError
from wgpu_runtime.format import load_artifacts, write_artifacts
from wgpu_runtime.graph.model import GraphModel, load_graph_model

from conftest import ADAPTERS

SMALL_LIMIT = 1 << 20
F = {"type": "DT_FLOAT"}
I32 = {"type": "DT_INT32"}
# float32 kernels against a float64 oracle: a few ULP per op, sums of up to 32 terms
RTOL = 1e-5
ATOL = 1e-6
# converted models against TensorFlow (test_models.py's bound, relative to the output scale):
# float32 through many layers, only the order of accumulation and exp/tanh approximations differ
FP32_DEEP = 1e-4


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(*v) -> dict:
    return {"list": {"i": [str(i) for i in v]}}


class Builder:
    """A TF.js graph model written by hand: one free-batch input ``x``, output ``y``."""

    def __init__(self, shape, dtype=F):
        dims = [{"size": str(d)} for d in (-1, *shape)]
        self.nodes = [{"name": "x", "op": "Placeholder", "attr": {"dtype": dtype, "shape": {"shape": {"dim": dims}}}}]
        self.weights = []
        self.last = "x"

    def const(self, name, value):
        value = np.asarray(value)
        self.nodes.append({"name": name, "op": "Const",
                           "attr": {"dtype": I32 if value.dtype == np.int32 else F, "value": {"tensor": {}}}})
        self.weights.append((name, value))
        return name

    def op(self, name, op, *inputs, **attrs):
        self.nodes.append({"name": name, "op": op, "input": list(inputs or [self.last]), "attr": {"T": F, **attrs}})
        self.last = name
        return name

    def save(self, folder):
        self.op("y", "Identity", self.last)
        model_json = {"format": "graph-model", "generatedBy": "test", "convertedBy": "test",
                      "modelTopology": {"node": self.nodes, "library": {}, "versions": {}}}
        write_artifacts(folder, model_json, [self.weights], shard_size=None)
        return folder


def _cnn(folder, rng):
    """x[-1,32,32,3] -> 1x1 Conv2D (32) -> BiasAdd -> Relu -> MaxPool 2x2 -> Reshape [-1,256,32]
    -> Mean over axis 1 -> MatMul [32,10] -> Softmax. Returns the folder and a float64 oracle."""
    w = rng.uniform(-1, 1, (1, 1, 3, 32)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (32,)).astype(np.float32)
    d = rng.uniform(-1, 1, (32, 10)).astype(np.float32)
    g = Builder((32, 32, 3))
    g.op("conv", "Conv2D", "x", g.const("w", w), strides=_ints(1, 1, 1, 1), padding=_s("SAME"),
         data_format=_s("NHWC"), dilations=_ints(1, 1, 1, 1))
    g.op("bias", "BiasAdd", "conv", g.const("b", b), data_format=_s("NHWC"))
    g.op("relu", "Relu")
    g.op("pool", "MaxPool", ksize=_ints(1, 2, 2, 1), strides=_ints(1, 2, 2, 1), padding=_s("VALID"),
         data_format=_s("NHWC"))
    g.op("flat", "Reshape", "pool", g.const("shape", np.array([-1, 256, 32], np.int32)), Tshape=I32)
    g.op("gap", "Mean", "flat", g.const("axis", np.array([1], np.int32)), keep_dims={"b": False}, Tidx=I32)
    g.op("logits", "MatMul", "gap", g.const("d", d), transpose_a={"b": False}, transpose_b={"b": False})
    g.op("probs", "Softmax")

    def oracle(x):
        h = np.maximum(np.einsum("nhwc,cf->nhwf", x.astype(np.float64), w[0, 0]) + b, 0)
        n = len(x)
        h = h.reshape(n, 16, 2, 16, 2, 32).max(axis=(2, 4)).reshape(n, 256, 32).mean(axis=1)
        z = h @ d
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return g.save(folder), oracle


_LIMITED: dict[tuple[str, int], object] = {}


def limited_device(adapter: str, limit: int):
    """A real device of ``adapter`` opened with a storage-binding limit of ``limit`` bytes."""
    if (adapter, limit) not in _LIMITED:
        a = find_adapter(adapter)
        feats = [f for f in ("timestamp-query",) if f in a.features]
        _LIMITED[adapter, limit] = get_device(a.request_device_sync(
            required_features=feats, required_limits={"max-storage-buffer-binding-size": limit}))
    dev = _LIMITED[adapter, limit]
    assert dev.max_binding_bytes == limit
    return dev


@pytest.fixture(scope="module", params=ADAPTERS)
def small_limit(request):
    """A real device of this adapter opened with a 1 MiB storage-binding limit."""
    return limited_device(request.param, SMALL_LIMIT)


def test_a_batch_over_the_limit_runs_in_chunks(tmp_path, small_limit):
    folder, oracle = _cnn(tmp_path / "cnn", np.random.default_rng(0))
    model = load_graph_model(folder, device=small_limit)
    x = np.random.default_rng(1).uniform(-1, 1, (23, 32, 32, 3)).astype(np.float32)
    # the conv's output is 23 * 32 * 32 * 32 * 4 = 3 MB: one plan cannot bind it
    y = model.predict(x)
    np.testing.assert_allclose(y, oracle(x), rtol=RTOL, atol=ATOL)
    info = model.memory_info()
    [chunked] = info["chunked"]
    assert chunked["inputs"] == {"x": [23, 32, 32, 3]} and 1 <= chunked["rows_per_chunk"] <= 8   # 128 KiB a row
    assert all(p["inputs"]["x"][0] == chunked["rows_per_chunk"] for p in info["plans"])
    np.testing.assert_allclose(model.predict(x[:5]), oracle(x[:5]), rtol=RTOL, atol=ATOL)   # fits: one plan
    np.testing.assert_allclose(model.predict(x), y, rtol=0, atol=0)      # the cached decision, same result


@pytest.mark.parametrize("rows,chunk", [(9, 3), (10, 4), (17, 4)])
def test_big_inputs_and_uneven_chunks(tmp_path, small_limit, rows, chunk):
    """The input itself over the limit (256 KiB a row: 4 rows fit); batches that do not divide
    into equal chunks (the last one padded)."""
    g = Builder((64, 1024))
    g.op("scaled", "Mul", "x", g.const("s", np.float32(0.5)))
    g.op("sm", "Softmax")
    g.op("t", "Transpose", "sm", g.const("perm", np.array([0, 2, 1], np.int32)), Tperm=I32)
    model = load_graph_model(g.save(tmp_path / "m"), device=small_limit)
    x = np.random.default_rng(rows).normal(size=(rows, 64, 1024)).astype(np.float32)
    z = 0.5 * x.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    ref = (e / e.sum(axis=-1, keepdims=True)).transpose(0, 2, 1)
    np.testing.assert_allclose(model.predict(x), ref, rtol=RTOL, atol=ATOL)
    assert model.memory_info()["chunked"][0]["rows_per_chunk"] == chunk


@pytest.mark.parametrize("case", ["reduce over the batch", "transpose of the batch", "batch from Shape as data"])
def test_a_graph_that_mixes_rows_fails_at_plan_time_naming_the_node(tmp_path, small_limit, case):
    g = Builder((4096,))
    g.op("relu", "Relu", "x")
    if case == "reduce over the batch":
        g.op("mix", "Sum", "relu", g.const("axis", np.array([0], np.int32)), keep_dims={"b": True}, Tidx=I32)
    elif case == "transpose of the batch":
        g.op("mix", "Transpose", "relu", g.const("perm", np.array([1, 0], np.int32)), Tperm=I32)
    else:       # a value folded on the host from the batch size, read by a kernel as data
        g.op("shape", "Shape", "relu", out_type=I32)
        g.op("cast", "Cast", "shape", SrcT=I32, DstT=F)
        g.op("n", "StridedSlice", "cast", g.const("b", np.array([0], np.int32)), g.const("e", np.array([1], np.int32)),
             g.const("st", np.array([1], np.int32)), Index=I32, begin_mask={"i": "0"}, end_mask={"i": "0"},
             ellipsis_mask={"i": "0"}, new_axis_mask={"i": "0"}, shrink_axis_mask={"i": "1"})
        g.op("mix", "Mul", "relu", "n")
    model = load_graph_model(g.save(tmp_path / "m"), device=small_limit)
    x = np.ones((100, 4096), np.float32)                  # 1.6 MB
    with pytest.raises(BindingLimitError) as e:
        model.predict(x)
    msg = str(e.value)
    assert msg.startswith("node 'relu' (Relu): a 1638400-byte tensor exceeds this adapter's 1048576-byte "
                          "storage binding limit; the batch cannot be split into chunks: node 'mix'"), msg
    assert e.value.nbytes == 1638400 and e.value.limit == SMALL_LIMIT
    with pytest.raises(BindingLimitError):               # again: the same clear error, at plan time
        model.predict(x)
    small = np.linspace(-1, 1, 2 * 4096, dtype=np.float32).reshape(2, 4096)    # the model still works
    r = np.maximum(small.astype(np.float64), 0)
    ref = {"reduce over the batch": r.sum(axis=0, keepdims=True), "transpose of the batch": r.T,
           "batch from Shape as data": 2 * r}[case]
    np.testing.assert_allclose(model.predict(small), ref, rtol=RTOL, atol=ATOL)


def test_one_row_over_the_limit_fails_at_plan_time(tmp_path, small_limit):
    """An op whose single row exceeds the limit (TopKV2 over 300k values): a clear error when
    the plan is made, for any batch."""
    g = Builder((300_000,))
    g.nodes.append({"name": "k", "op": "Const", "attr": {"dtype": I32, "value": {"tensor": {}}}})
    g.weights.append(("k", np.array(5, np.int32)))
    g.op("topk", "TopKV2", "x", "k", sorted={"b": True})
    model = load_graph_model(g.save(tmp_path / "m"), device=small_limit)
    for batch in (1, 3):
        with pytest.raises(BindingLimitError) as e:
            model.predict(np.zeros((batch, 300_000), np.float32))
        assert str(e.value).startswith(f"node 'topk' (TopKV2): a {batch * 1_200_000}-byte tensor exceeds this "
                                       f"adapter's 1048576-byte storage binding limit; the batch cannot be split"), e.value
        assert ("the batch has one row" if batch == 1 else "one row alone exceeds it") in str(e.value)


def test_lavapipe_real_limit_over_128_mib(tmp_path):
    """The adapter's own limit (128 MiB on lavapipe): the conv output of 1100 rows is 144 MB."""
    dev = get_device("llvmpipe")            # lavapipe: Vulkan's llvmpipe is enumerated before OpenGL's
    if dev.max_binding_bytes != 1 << 27:
        pytest.fail(f"expected lavapipe's 128 MiB binding limit, got {dev.max_binding_bytes}")
    folder, oracle = _cnn(tmp_path / "cnn", np.random.default_rng(2))
    model = load_graph_model(folder, device=dev)
    x = np.random.default_rng(3).uniform(-1, 1, (1100, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), oracle(x), rtol=RTOL, atol=ATOL)
    [chunked] = model.memory_info()["chunked"]
    assert chunked["rows_per_chunk"] == 550            # 131072 bytes a row: 1024 rows fit; 2 equal chunks


def test_plan_cache_size(tmp_path, monkeypatch, device):
    from fixtures.tiny_models import tiny_model

    art = load_artifacts(tiny_model(tmp_path / "tiny"))
    model = GraphModel(art, device, plan_cache_size=2)
    for n in (1, 2, 3):
        model.predict(np.zeros((n, 8), np.float32))
    assert [p["inputs"]["x"][0] for p in model.memory_info()["plans"]] == [2, 3]
    assert model.memory_info()["plan_cache_size"] == 2
    monkeypatch.setenv("WGPU_RUNTIME_PLAN_CACHE", "3")
    assert load_graph_model(tmp_path / "tiny", device=device).plan_cache_size == 3
    assert load_graph_model(tmp_path / "tiny", device=device, plan_cache_size=5).plan_cache_size == 5
    monkeypatch.setenv("WGPU_RUNTIME_PLAN_CACHE", "lots")
    with pytest.raises(ValueError, match="WGPU_RUNTIME_PLAN_CACHE must be an integer >= 1, got 'lots'"):
        GraphModel(art, device)
    with pytest.raises(ValueError, match="plan_cache_size must be an integer >= 1, got 0"):
        GraphModel(art, device, plan_cache_size=0)


def test_topk_over_the_limit_binds_sub_ranges_of_rows(tmp_path, small_limit):
    """TopKV2 whose input (600 rows of 512: 1.2 MB) exceeds the limit: one dispatch per group
    of rows, each binding a sub-range of the input and outputs; TensorFlow's order (ties by
    lower index)."""
    g = Builder((512,))
    g.nodes.append({"name": "k", "op": "Const", "attr": {"dtype": I32, "value": {"tensor": {}}}})
    g.weights.append(("k", np.array(8, np.int32)))
    g.op("topk", "TopKV2", "x", "k", sorted={"b": True})
    folder = g.save(tmp_path / "m")
    model = load_graph_model(folder, device=small_limit)
    x = (np.random.default_rng(8).integers(0, 50, (600, 512)) / 4).astype(np.float32)   # many ties
    values, indices = model.execute({"x": x}, ["topk:0", "topk:1"])
    order = np.argsort(-x.astype(np.float64), axis=1, kind="stable")[:, :8]
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_array_equal(values, np.take_along_axis(x, order, axis=1))
    plan, _ = model.prepare({"x": x}, ["topk:0", "topk:1"])
    steps = [st for st in plan.steps if st.op == "TopKV2"]
    assert len(steps) >= 2 and all(b.nbytes <= SMALL_LIMIT for st in steps for b in st.bindings)
    assert model.memory_info()["chunked"] == []         # the op split itself: no chunking needed


def test_topk_sub_ranges_on_the_dynamic_executor(tmp_path, small_limit):
    """The same split where the graph runs node by node (a Where after it: a data-dependent
    shape, as in a detector's post-processing)."""
    g = Builder((512,))
    g.nodes.append({"name": "k", "op": "Const", "attr": {"dtype": I32, "value": {"tensor": {}}}})
    g.weights.append(("k", np.array(4, np.int32)))
    g.op("topk", "TopKV2", "x", "k", sorted={"b": True})
    g.op("big", "Greater", "topk", g.const("t", np.float32(11.5)))
    g.op("where", "Where", "big")
    model = load_graph_model(g.save(tmp_path / "m"), device=small_limit)
    x = (np.random.default_rng(9).integers(0, 50, (600, 512)) / 4).astype(np.float32)
    indices, where = model.execute({"x": x}, ["topk:1", "where:0"])
    assert model.is_dynamic
    order = np.argsort(-x.astype(np.float64), axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_array_equal(where, np.argwhere(np.take_along_axis(x, order, axis=1) > 11.5))


def test_converted_models_in_chunks_match_tensorflow(small_limit):
    """Models converted by the official tensorflowjs converter (through the load-time optimizer),
    at batches over the limit, against TensorFlow's outputs for the same rows."""
    from fixtures.graph_models import fixture_path, load_io

    ins, outs = load_io("dynamic_batch", "3")                # Conv + Reshape + Dense: 3 KiB a row
    x = np.tile(ins["x"], (134, 1, 1, 1))                    # 402 rows: 1.2 MB
    # the storage-buffer kernels bind the input (the texture ones copy it into a texture, which
    # no storage-binding limit bounds, and would need no chunks here)
    with tuning.forcing({"conv2d": "regblock", "matmul": "regblock"}):
        model = load_graph_model(fixture_path("dynamic_batch"), device=small_limit)
        y = model.predict(x)
    assert _scaled_err(y, np.tile(outs["dense"], (134, 1))) <= FP32_DEEP
    assert model.memory_info()["chunked"][0]["rows_per_chunk"] == 201


def test_mobilenet_in_chunks_matches_tensorflow():
    """MobileNetV2 at 224 (its widest tensor: 4.8 MB a row) on a lavapipe device with a 10 MiB
    limit: 3 rows run as 2 chunks of 2 (the second padded)."""
    from fixtures.graph_models import fixture_path, load_io

    ins, outs = load_io("mobilenet_v2")
    dev = limited_device("vulkan", 10 << 20)
    model = load_graph_model(fixture_path("mobilenet_v2"), device=dev)
    x = np.concatenate([ins["input"], ins["input"][:, ::-1], ins["input"]])   # a second, different row
    y = model.predict(x)
    assert model.memory_info()["chunked"][0]["rows_per_chunk"] == 2
    assert _scaled_err(y[[0, 2]], np.concatenate([outs["predictions"]] * 2)) <= FP32_DEEP
    assert _scaled_err(y[1:2], model.predict(x[1:2])) <= FP32_DEEP        # a chunk-free run of that row


def _scaled_err(actual, expected) -> float:
    """Largest difference relative to the output's scale (test_models.py's measure)."""
    expected = np.asarray(expected, np.float64)
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected)) / np.max(np.abs(expected)))
