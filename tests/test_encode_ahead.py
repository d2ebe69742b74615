"""Encoding ahead (graph/executor.py): a call submits the plan's body (its dispatches and the
copies between them) encoded during the previous call, after writing its own inputs, then
encodes the next call's body. What must hold: every call computes on its own inputs, whether
its body was encoded before or after they were written, on plans with and without copies into
texture operands; nothing encoded ahead outlives the buffers it binds.

Oracles: float64 numpy for the tiny model (float32 products of at most 16 terms: 1e-5 of the
output scale covers their rounding), TensorFlow's outputs stored with the small_cnn fixture
(batch-separable, so its input's rows reversed give TF's output rows reversed), held to the
fixtures' float32 tolerance (1e-4 of the output scale: float32 accumulation order through
several layers, tests/test_models.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime.graph import executor
from fixtures.graph_models import fixture_path, load_io
from fixtures.tiny_models import tiny_model, tiny_reference


def _rel_err(actual, expected) -> float:
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-30))


@pytest.fixture(params=[True, False], ids=["ahead", "inline"])
def ahead(request, monkeypatch):
    monkeypatch.setattr(executor, "ENCODE_AHEAD", request.param)
    return request.param


def test_every_call_computes_on_its_own_inputs(device, tmp_path, ahead):
    model = wr.load_graph_model(tiny_model(tmp_path / "tiny"), device=device)
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-1, 1, (3, 8)).astype(np.float32) for _ in range(8)]
    for i, x in enumerate(xs):
        y = model.predict(x)
        assert _rel_err(y, tiny_reference(x)) <= 1e-5, f"call {i}"
    (plan,) = model._plans.values()
    assert len(plan.ahead) == (1 if ahead else 0)      # the next call's body waits (or none is made)


def test_a_plan_with_texture_copies_alternating_inputs(device, ahead):
    inputs, outputs = load_io("small_cnn")
    (x,), (want,) = inputs.values(), outputs.values()
    model = wr.load_graph_model(fixture_path("small_cnn"), device=device)
    for i in range(6):                  # the input and its rows reversed, in turn
        flip = i % 2 == 1
        y = model.predict(x[::-1].copy() if flip else x)
        assert _rel_err(y, want[::-1] if flip else want) <= 1e-4, f"call {i} ({'reversed' if flip else 'as stored'})"
    (plan,) = model._plans.values()
    assert any(st.pipeline is None for st in plan.steps), "small_cnn's plan should copy into texture operands"
    assert len(plan.ahead) == (1 if ahead else 0)


def test_device_tensor_inputs_and_outputs_around_a_body_encoded_ahead(device, tmp_path, ahead):
    model = wr.load_graph_model(tiny_model(tmp_path / "tiny"), device=device)
    rng = np.random.default_rng(5)
    for i in range(4):
        x = rng.uniform(-1, 1, (2, 8)).astype(np.float32)
        y = model.predict(wr.tensor(x, device=device), on_device=True)     # head and tail copies
        assert isinstance(y, wr.Tensor) and _rel_err(y.numpy(), tiny_reference(x)) <= 1e-5, f"call {i}"


def test_stats_name_both_encoding_times(device, tmp_path, ahead):
    model = wr.load_graph_model(tiny_model(tmp_path / "tiny"), device=device)
    x = np.ones((1, 8), np.float32)
    plan, arrays = model.prepare({"x": x})
    for _ in range(2):
        stats = {}
        (y,) = executor.run(model.device, plan, arrays, stats)
        assert set(stats) == {"encode_s", "encode_waited_s"} and stats["encode_s"] > 0
        assert _rel_err(y, tiny_reference(x)) <= 1e-5


def test_dispose_drops_the_body_encoded_ahead_and_the_device_stays_usable(device, tmp_path):
    model = wr.load_graph_model(tiny_model(tmp_path / "a"), device=device)
    x = np.full((2, 8), 0.5, np.float32)
    model.predict(x)
    (plan,) = model._plans.values()
    assert plan.ahead
    model.dispose()                     # destroys the buffers the waiting body binds
    assert not plan.ahead
    other = wr.load_graph_model(tiny_model(tmp_path / "b"), device=device)
    assert _rel_err(other.predict(x), tiny_reference(x)) <= 1e-5


@pytest.mark.parametrize("value, expected", [("0", False), ("1", True), ("", True)])
def test_the_environment_variable_turns_it_off(value, expected):
    code = "from wgpu_runtime.graph import executor; print(executor.ENCODE_AHEAD)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "WGPU_RUNTIME_ENCODE_AHEAD": value}).stdout
    assert out.strip() == str(expected)
