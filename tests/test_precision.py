"""precision="float16" (wgpu_runtime/precision.py): the matmuls and convolutions in f16 on an
adapter with shader-f16 (lavapipe here), a clear error where there is none (llvmpipe GL) or for
a precision that does not exist, and float32 everywhere else and by default."""
from __future__ import annotations

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime import precision
from wgpu_runtime.graph.single_op import op_model
from wgpu_runtime.models import default_model_path
from wgpu_runtime.ops import REGISTRY, tiled
from wgpu_runtime.tolerance import assert_close, half_precision_tolerance

HALF_OPS = ("MatMul", "_FusedMatMul", "BatchMatMulV2", "Conv2D", "_FusedConv2D", "Conv2DBackpropInput")


@pytest.fixture
def half_device(device):
    if precision.FEATURE not in device.features:
        pytest.skip(f"{device.name} has no {precision.FEATURE}: test_float16_without_the_feature_is_a_clear_error")
    return device


@pytest.mark.parametrize("op", HALF_OPS)
def test_float16_runs_every_registry_case_in_f16_within_its_rounding(half_device, op):
    """Each float32 registry case of the op under precision="float16": the f16 tiled kernel ran
    (tiled.LAUNCHED), and every element is within f16's worst-case rounding of the numpy
    reference (tolerance.half_precision_tolerance: operands rounded to f16 and products summed
    in f16 over at most K + 2 steps, so |got - want| <= (K + 2) * 2**-11 * (the same sum over
    |terms|), plus f16's subnormal floor)."""
    ran = 0
    for i, case in enumerate(REGISTRY[op].cases):
        inputs = case.materialize(seed=i)
        if any(np.asarray(a).dtype not in (np.float32, np.int32, np.int64) for a in inputs) or \
                np.asarray(inputs[1]).dtype != np.float32:
            continue
        want = REGISTRY[op].run_reference(case.attrs, inputs)[0]
        if want.size == 0 or np.abs(want).max() > 1e4:       # (f16's range ends at 65504)
            continue
        family = "conv2d_f16" if "Conv" in op else "matmul_f16"
        before = sum(n for (f, _, d), n in tiled.LAUNCHED.items() if f == family and d == half_device.name)
        model = op_model(op, case.attrs, inputs, half_device, precision="float16")
        feeds = {f"in{k}": a for k, a in enumerate(inputs) if f"in{k}" in {t.name for t in model.inputs}}
        got = np.asarray(model.execute(feeds)[0])
        after = sum(n for (f, _, d), n in tiled.LAUNCHED.items() if f == family and d == half_device.name)
        assert after > before, f"{op} case {i}: no f16 kernel ran"
        tol = half_precision_tolerance(REGISTRY[op], case.attrs, inputs, [want])
        assert_close(got, want, tol, f"{op} case {i} ({case.note})")
        ran += 1
    assert ran > 0


def test_float16_changes_the_embedded_model_by_f16_rounding_only(half_device):
    """The embedded MobileNetV2 at float16 against float32 on the same device: the same top
    class, probabilities within 5e-3 (f16's 2**-11 relative rounding through 50 layers), and
    every tiled pipeline it compiled is an f16 one."""
    path = default_model_path()
    m32 = wr.load_model(path, device=half_device)
    m16 = wr.load_model(path, device=half_device, precision="float16")
    assert (m32.precision, m16.precision) == ("float32", "float16")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    name = m32.inputs[0].name
    a, b = np.asarray(m32.execute({name: x})[0]), np.asarray(m16.execute({name: x})[0])
    assert a.argmax() == b.argmax() and np.abs(a - b).max() <= 5e-3, float(np.abs(a - b).max())
    assert np.abs(a - b).max() > 0                     # it did compute in f16
    keys = [k for k in half_device.pipelines._cache if k[0] in ("conv2d_tiled.wgsl", "matmul_tiled.wgsl")]
    assert {dict(k[1]).get("TC") for k in keys if dict(k[1]).get("ENABLES")} == {"f16"}


def test_float16_without_the_feature_is_a_clear_error(device):
    """An adapter without shader-f16 (llvmpipe GL) refuses float16 at load, naming the feature
    and the adapter; a precision that does not exist names the choices; float32 is the default."""
    path = default_model_path()
    assert wr.load_model(path, device=device).precision == "float32"
    with pytest.raises(wr.PrecisionError, match="float32, float16"):
        wr.load_model(path, device=device, precision="bfloat16")
    if precision.FEATURE in device.features:
        pytest.skip(f"{device.name} has {precision.FEATURE}: the float16 tests above run there")
    with pytest.raises(wr.PrecisionError, match="shader-f16") as e:
        wr.load_model(path, device=device, precision="float16")
    assert device.name in str(e.value)


def test_the_half_bound_holds_an_f16_error_and_refuses_a_larger_one():
    """The bound is tight enough to mean something: a float32 matmul's result moved by the bound
    passes, moved by twice the bound fails, and a one-f16-ULP-per-term error over K terms is
    inside it (what the kernels' rounding can do)."""
    op = REGISTRY["MatMul"]
    case = op.cases[0]
    inputs = case.materialize(seed=0)
    want = op.run_reference(case.attrs, inputs)[0]
    tol = half_precision_tolerance(op, case.attrs, inputs, [want])
    assert tol.bound.shape == want.shape and np.all(tol.bound > 0)
    assert_close(want + tol.bound, want, tol)
    with pytest.raises(AssertionError, match="element's bound"):
        assert_close(want + 2 * tol.bound, want, tol)
    a16, b16 = (np.asarray(x, np.float16).astype(np.float32) for x in inputs[:2])
    assert_close(a16 @ b16, want, tol)                  # operands rounded to f16, summed exactly


def test_conformance_runs_the_op_cases_in_float16(tmp_path):
    """conformance --precision float16: the op cases on the adapters with shader-f16, f16 cases
    held to the half bound; a clear usage error without such an adapter or with a model."""
    import json
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "conformance", *args],
                              capture_output=True, text=True, timeout=600)

    r = cli("--adapter", "vulkan", "--ops", "MatMul,Conv2D", "--precision", "float16", "--json",
            "--report", str(tmp_path / "r.md"))
    assert r.returncode == 0, r.stderr[-2000:]
    run = json.loads(r.stdout)
    assert run["precision"] == "float16" and run["summary"]["passed"]
    assert run["summary"]["op_cases"] == len(REGISTRY["MatMul"].cases) + len(REGISTRY["Conv2D"].cases)
    assert "precision float16" in (tmp_path / "r.md").read_text()
    r = cli("--adapter", "gl", "--ops", "MatMul", "--precision", "float16")
    assert r.returncode == 2 and "shader-f16" in r.stderr and "Traceback" not in r.stderr
    r = cli("--adapter", "vulkan", "--precision", "float16", str(default_model_path()))
    assert r.returncode == 2 and "op cases" in r.stderr
