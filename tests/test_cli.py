"""The command line: adapters, info, run (npy in, npz out) and bench --json, as a user runs them."""
import json
import subprocess
import sys

import numpy as np
import pytest

from wgpu_runtime.models import default_model_path

MODEL = default_model_path()


def cli(*args, check=True):
    out = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", *map(str, args)], capture_output=True,
                         text=True, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_adapters_lists_both_cpu_adapters():
    found = json.loads(cli("adapters", "--json").stdout)
    assert {a["backend"] for a in found} >= {"Vulkan", "OpenGL"}


def test_info_names_inputs_outputs_and_ops():
    out = cli("info", MODEL).stdout
    assert "input:0" in out and "Identity:0" in out and "_FusedConv2D" in out and "unsupported" not in out


@pytest.mark.parametrize("adapter", ["vulkan", "gl"])
def test_run_writes_outputs_matching_tensorflow(tmp_path, adapter):
    ref = np.load(MODEL / "reference.npz")
    np.save(tmp_path / "x.npy", ref["x"])
    cli("run", MODEL, "--input", f"input={tmp_path / 'x.npy'}", "--output", tmp_path / "out.npz",
        "--adapter", adapter)
    y = np.load(tmp_path / "out.npz")["Identity:0"]
    # TF's output from the same dequantized weights; float32 summation order differs (see test_models)
    np.testing.assert_allclose(y, ref["y"], atol=1e-4 * np.abs(ref["y"]).max())


def test_run_errors_are_one_line_not_a_traceback(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 5), np.float32))
    out = cli("run", MODEL, "--input", f"input={tmp_path / 'x.npy'}", check=False)
    assert out.returncode == 2
    assert out.stderr.startswith("error: input 'input' must have shape") and "Traceback" not in out.stderr


def test_bench_json_has_the_documented_keys():
    out = cli("bench", "--json", "--runs", "3", "--warmup", "1")
    result = json.loads(out.stdout)
    for key in ("adapter", "load_ms", "first_ms", "pipelines_compiled", "median_ms", "min_ms", "p90_ms", "runs"):
        assert key in result, key
    assert result["runs"] == 3 and result["pipelines_compiled"] > 0
    assert result["min_ms"] <= result["median_ms"] <= result["p90_ms"]
    assert result["top_ops"], "timestamp queries work on lavapipe: per-op GPU times expected"


def test_bench_a_control_flow_model_with_given_inputs(tmp_path):
    from fixtures.dynamic_models import fixture
    folder, inputs, _ = fixture("loops_v2")
    args = []
    for key, value in inputs.items():
        np.save(tmp_path / f"{key}.npy", value)
        args += ["--input", f"{key}={tmp_path / f'{key}.npy'}"]
    result = json.loads(cli("bench", folder, "--json", "--runs", "2", "--warmup", "1", *args).stdout)
    assert result["executor"] == "dynamic" and result["runs"] == 2 and result["median_ms"] > 0


@pytest.mark.parametrize("adapter", ["vulkan", "gl"])
def test_run_and_info_on_a_layers_model(tmp_path, adapter):
    from fixtures.layers_models import layers_fixture, load_npz
    folder = layers_fixture("mlp")
    io = load_npz("mlp")
    np.save(tmp_path / "f.npy", io["in:features"])
    cli("run", folder, "--input", f"features={tmp_path / 'f.npy'}", "--output", tmp_path / "o.npz",
        "--adapter", adapter)
    got = np.load(tmp_path / "o.npz")["dense_2"]
    # Keras' own prediction (io.npz); 3 small dense layers in float32: a few ULP of accumulation order
    np.testing.assert_allclose(got, io["out:0"], atol=1e-5)
    assert "Total params" in cli("info", folder).stdout
