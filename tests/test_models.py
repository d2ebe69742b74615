"""End to end: models converted by the official tensorflowjs converter, run by wgpu_runtime on
each adapter, compared with TensorFlow's own outputs (tests/fixtures/build_graph_models.py).

Error measure: ``max|actual - expected| / max|expected|`` over each output ("relative to the
output scale"), which is insensitive to the tiny entries of a softmax where a relative error per
element would be meaningless. Tolerances, and why:

FP32_DEEP = 1e-4
    float32 through many layers or transcendental functions (MobileNetV2: 52 convolutions;
    small_cnn: exp/tanh/sigmoid/softplus/selu/resize). Only the order of fp32 accumulation (GPU
    tiles vs TF's Eigen blocks, FMA contraction) and the GPU's exp/tanh approximations differ:
    TF itself, running the converted graph (batch norms folded) vs the SavedModel, differs by
    ~8e-7 on MobileNetV2. 1e-4 leaves >100x margin; a real bug (wrong padding, a transposed
    weight, a dropped bias) moves these outputs by >1e-2.
FP32_SHALLOW = 1e-5
    a few layers of multiply-add / ReLU / tanh (dynamic_batch, tiny_shards, multi_io, ops_mix):
    rounding grows with depth and reduction length (<= 60 here), ~1e-7 expected.
UINT8_VS_FLOAT = 3e-2, FLOAT16_VS_FLOAT = 1e-3
    quantized MobileNetV2 vs the FLOAT32 model: dominated by the quantization itself, which TF
    measures on this very fixture (io.npz ``out`` vs ``out_dequant``) at ~1.0e-2 for uint8 (a
    per-tensor step of range/255) and ~3.4e-4 for float16 (11-bit mantissa); the notes report
    the same order on trained MobileNetV2 logits (2e-2, 4e-4). ~3x margin. Against
    ``out_dequant`` (TF with the very weights decoded from the shards) the quantized models are
    held to FP32_DEEP: any decoding error (min nudging, scale, float16 bits, a shard offset)
    shows there, far above fp32 noise.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import wgpu_runtime as wr

from fixtures.graph_models import FixtureUnavailable, ensure_fixtures, fixture_path, load_io

# Same default and override as conftest.py (WGPU_TEST_ADAPTERS="vulkan,gl" substrings).
ADAPTERS = [a for a in os.environ.get("WGPU_TEST_ADAPTERS", "vulkan,gl").split(",") if a]

FP32_DEEP = 1e-4
FP32_SHALLOW = 1e-5
UINT8_VS_FLOAT = 3e-2
FLOAT16_VS_FLOAT = 1e-3

FIXTURES_USED = ["mobilenet_v2", "mobilenet_v2_uint8", "mobilenet_v2_float16", "small_cnn",
                 "dynamic_batch", "tiny_shards", "multi_io", "ops_mix"]

_models: dict[tuple[str, str], object] = {}


@pytest.fixture(scope="module", autouse=True)
def _build_fixtures_and_release_models():
    # Build whatever is missing in ONE TensorFlow process (tens of seconds the first time, then
    # cached in .fixtures/). A failure here is not fatal: each test's fixture_path() retries its
    # own fixture and reports that build's log.
    try:
        ensure_fixtures(*FIXTURES_USED)
    except FixtureUnavailable:
        pass
    except RuntimeError:
        pass
    yield
    _models.clear()


def _fixture(name: str):
    # No skip: a fixture that cannot be built (TensorFlow missing, converter broken) is a failure.
    return fixture_path(name)


def _io(name: str, variant: str = ""):
    _fixture(name)
    return load_io(name, variant)


def _signature(name: str) -> dict:
    return json.loads((_fixture(name) / "model.json").read_text())["signature"]


def _load(name: str, adapter: str):
    """One loaded model per (fixture, adapter) for the whole module (pipelines compile once)."""
    key = (name, adapter)
    if key not in _models:
        _models[key] = wr.load_graph_model(_fixture(name), adapter=adapter)
    return _models[key]


def _err(actual, expected) -> float:
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    return float(np.max(np.abs(a - e))) / max(float(np.max(np.abs(e))), 1e-30)


def assert_close(actual, expected, tol: float, what: str) -> None:
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    err = _err(actual, expected)
    assert err <= tol, (f"{what}: max abs diff relative to output scale {err:.3g} > {tol:g} "
                        f"(max abs diff {np.max(np.abs(actual.astype(np.float64) - expected)):.3g})")


def _single(d: dict):
    (v,) = d.values()
    return v


# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("adapter", ADAPTERS)
def test_mobilenet_v2_float32(adapter):
    inputs, outputs = _io("mobilenet_v2")
    model = _load("mobilenet_v2", adapter)
    y = model.predict(_single(inputs))
    assert_close(y, _single(outputs), FP32_DEEP, f"mobilenet_v2 [{adapter}]")
    assert int(np.argmax(y)) == int(np.argmax(_single(outputs)))


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("quant, loose", [("uint8", UINT8_VS_FLOAT), ("float16", FLOAT16_VS_FLOAT)])
def test_mobilenet_v2_quantized(adapter, quant, loose):
    name = f"mobilenet_v2_{quant}"
    inputs, y_float = _io(name)
    _, y_dequant = _io(name, "_dequant")
    expected_float, expected_dequant = _single(y_float), _single(y_dequant)
    # The fixture's own quantization error must sit under the loose tolerance, else the
    # tolerance below says nothing about the runtime.
    assert _err(expected_dequant, expected_float) < loose / 2
    y = _load(name, adapter).predict(_single(inputs))
    assert_close(y, expected_dequant, FP32_DEEP, f"{name} [{adapter}] vs TF with the same weights")
    assert_close(y, expected_float, loose, f"{name} [{adapter}] vs the float32 model")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_small_cnn(adapter):
    inputs, outputs = _io("small_cnn")
    y = _load("small_cnn", adapter).predict(_single(inputs))      # batch 2
    assert_close(y, _single(outputs), FP32_DEEP, f"small_cnn [{adapter}]")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_dynamic_batch(adapter):
    model = _load("dynamic_batch", adapter)
    (spec,) = model.inputs
    assert list(spec.shape)[1:] == [16, 16, 3]
    assert spec.shape[0] in (None, -1), f"batch dim should be unknown, got {spec.shape}"
    # The same loaded model at batch 1, then 3, then 1 again (no shape state may leak).
    for batch in ("1", "3", "1"):
        inputs, outputs = _io("dynamic_batch", batch)
        y = model.predict(inputs["x"])
        assert_close(y, _single(outputs), FP32_SHALLOW, f"dynamic_batch batch {batch} [{adapter}]")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_tiny_shards(adapter):
    folder = _fixture("tiny_shards")
    assert len(list(folder.glob("*.bin"))) > 1        # really sharded (1024-byte shards)
    inputs, outputs = _io("tiny_shards")
    y = _load("tiny_shards", adapter).predict(_single(inputs))
    assert_close(y, _single(outputs), FP32_SHALLOW, f"tiny_shards [{adapter}]")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_multi_io_by_signature_key(adapter):
    inputs, outputs = _io("multi_io")
    model = _load("multi_io", adapter)
    assert sorted(s.name for s in model.inputs) in (["image", "scale"], ["image:0", "scale:0"])
    logits, features = model.execute({"image": inputs["image"], "scale": inputs["scale"]},
                                     ["logits", "features"])
    assert_close(logits, outputs["logits"], FP32_SHALLOW, f"multi_io logits [{adapter}]")
    assert_close(features, outputs["features"], FP32_SHALLOW, f"multi_io features [{adapter}]")
    # Outputs requested in the other order come back in that order.
    features2, logits2 = model.execute(inputs, ["features", "logits"])
    np.testing.assert_array_equal(features2, features)
    np.testing.assert_array_equal(logits2, logits)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_multi_io_by_tensor_name(adapter):
    inputs, outputs = _io("multi_io")
    sig = _signature("multi_io")
    model = _load("multi_io", adapter)
    feeds = {sig["inputs"][k]["name"]: v for k, v in inputs.items()}           # "image:0", ...
    keys = sorted(outputs)
    names = [sig["outputs"][k]["name"] for k in keys]                          # "Identity_1:0", ...
    for requested in (names, [n.split(":")[0] for n in names]):                # with and without :0
        got = model.execute(feeds, requested)
        assert len(got) == len(keys)
        for k, y in zip(keys, got):
            assert_close(y, outputs[k], FP32_SHALLOW, f"multi_io {k} as {requested} [{adapter}]")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_ops_mix(adapter):
    inputs, outputs = _io("ops_mix")
    model = _load("ops_mix", adapter)
    y, argmax = model.execute(inputs, ["y", "argmax"])
    # y mixes exact data movement (slices, pads, gathers, casts, selects) with short
    # reductions, matmuls and a softmax: fp32 rounding only.
    assert_close(y, outputs["y"], FP32_SHALLOW, f"ops_mix y [{adapter}]")
    assert np.asarray(argmax).dtype == np.int32
    np.testing.assert_array_equal(argmax, outputs["argmax"])


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_default_model(adapter):
    from wgpu_runtime.models import default_model_path
    folder = default_model_path()
    with np.load(folder / "reference.npz") as ref:
        x, y_ref = ref["x"], ref["y"]
    model = wr.load_graph_model(folder, adapter=adapter)
    # reference y was computed by TF from the dequantized float16 weights: fp32 noise only.
    assert_close(model.predict(x), y_ref, FP32_DEEP, f"default model [{adapter}]")
