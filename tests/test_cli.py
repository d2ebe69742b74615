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
    assert out.returncode == 3                  # a model / input error (wgpu_runtime/exit_codes.py)
    assert out.stderr.startswith("error: input 'input' must have shape") and "Traceback" not in out.stderr


def test_bench_json_has_the_documented_keys():
    out = cli("bench", "--json", "--runs", "3", "--warmup", "1")
    result = json.loads(out.stdout)
    for key in ("adapter", "load_ms", "first_ms", "pipelines_compiled", "median_ms", "min_ms", "p90_ms", "runs",
                "p99_ms", "stddev_ms", "inferences_per_s", "times_ms", "nodes", "machine", "adapter_info", "driver",
                "wgpu_version", "encode_us_per_dispatch", "encode_waited_us"):
        assert key in result, key
    assert result["runs"] == 3 and result["pipelines_compiled"] > 0
    assert result["encode_us_per_dispatch"] > 0 and result["encode_waited_us"] > 0
    assert result["min_ms"] <= result["median_ms"] <= result["p90_ms"] <= result["p99_ms"]
    assert result["top_ops"], "timestamp queries work on lavapipe: per-op GPU times expected"
    times = result["times_ms"]
    assert len(times) == 3 and min(times) == result["min_ms"] and sorted(times)[1] == result["median_ms"]
    assert result["inferences_per_s"] == pytest.approx(1e3 / result["median_ms"])       # batch 1
    assert result["stddev_ms"] == pytest.approx(float(np.std(times, ddof=1)))
    nodes = result["nodes"]
    assert nodes and all(set(n) >= {"node", "op", "gpu_ms"} for n in nodes)
    assert sum(n["gpu_ms"] for n in nodes) == pytest.approx(result["gpu_ms_total"])
    assert sum(n["dispatches"] for n in nodes) == result["dispatches"]
    assert {n["op"] for n in nodes} == {o["op"] for o in result["top_ops"]}
    import platform
    import wgpu
    assert result["machine"]["cores"] >= 1 and result["machine"]["hostname"] == platform.node()
    assert result["wgpu_version"] == wgpu.__version__
    assert result["adapter_info"]["backend_type"] == result["backend"] and result["driver"]
    assert result["loop_bounding"] is False      # shader_modules.py: off unless WGPU_RUNTIME_LOOP_BOUNDING=1


def test_bench_a_control_flow_model_with_given_inputs(tmp_path):
    from fixtures.dynamic_models import fixture
    folder, inputs, _ = fixture("loops_v2")
    args = []
    for key, value in inputs.items():
        np.save(tmp_path / f"{key}.npy", value)
        args += ["--input", f"{key}={tmp_path / f'{key}.npy'}"]
    result = json.loads(cli("bench", folder, "--json", "--runs", "2", "--warmup", "1", *args).stdout)
    assert result["executor"] == "dynamic" and result["runs"] == 2 and result["median_ms"] > 0


def test_bench_random_inputs_a_model_refuses_say_how_to_give_real_ones():
    """loops_v2 reads rows of a [-1, 4] input past the one row random inputs give it: the
    error names the index (as TF does) and the way out; with --batch 5 it runs."""
    from fixtures.dynamic_models import fixture
    folder, _, _ = fixture("loops_v2")
    out = cli("bench", folder, "--json", "--runs", "1", "--warmup", "0", check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "is out of range for a list of 1 elements" in out.stderr and "--input NAME=FILE.npy" in out.stderr
    result = json.loads(cli("bench", folder, "--json", "--runs", "1", "--warmup", "0", "--batch", "5").stdout)
    assert result["executor"] == "dynamic" and result["median_ms"] > 0


def test_bench_a_model_with_string_inputs():
    """Random inputs for a string input are words (inputs.random_inputs), not floats."""
    from fixtures.dynamic_models import fixture
    from wgpu_runtime.format import TensorSpec
    from wgpu_runtime.inputs import random_inputs

    words = random_inputs([TensorSpec("w", "string", (-1, 3))], batch=4)["w"]
    assert words.shape == (4, 3) and words.dtype.kind == "U" and all(w.isalpha() and w.islower() for w in words.flat)
    folder, _, _ = fixture("tables_v2")
    result = json.loads(cli("bench", folder, "--json", "--runs", "1", "--warmup", "0", "--batch", "3").stdout)
    assert result["executor"] == "dynamic" and result["median_ms"] > 0


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



# ----------------------------------------------------------------------- options, errors, exit statuses
def one_error_line(out, status, *needles):
    assert out.returncode == status, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and len(lines) >= 1, out.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def test_version_and_help_on_every_option():
    import argparse

    import wgpu_runtime
    from wgpu_runtime.__main__ import build_parser
    from wgpu_runtime.convert.cli import build_parser as convert_parser

    assert cli("--version").stdout.strip().startswith(f"wgpu-runtime {wgpu_runtime.__version__} (wgpu ")
    top = build_parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(subs) >= {"adapters", "info", "run", "bench", "convert", "conformance"}
    parsers = [("wgpu-runtime", top), ("convert", convert_parser())]
    parsers += [(name, p) for name, p in subs.items() if name != "convert"]   # convert: its own parser above
    for name, parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings or action.dest)
        if name != "convert":
            flags = {f for a in parser._actions for f in a.option_strings}
            assert {"-q", "-v"} <= flags, name
        assert "exit status" in (parser.epilog or ""), name
    text = cli("bench", "--help").stdout
    assert "--runs RUNS" in text and "timed runs" in text and "exit status: 0 ok" in text


@pytest.mark.parametrize("args, needle", [(["--runs", "0"], "argument --runs: must be at least 1"),
                                          (["--batch", "0"], "argument --batch: must be at least 1"),
                                          (["--warmup", "-1"], "argument --warmup: must be 0 or more"),
                                          (["--runs", "x"], "argument --runs: not an integer")])
def test_bench_rejects_bad_counts(args, needle):
    one_error_line(cli("bench", *args, check=False), 2, needle)


def test_exit_statuses(tmp_path):
    np.save(tmp_path / "x.npy", np.load(MODEL / "reference.npz")["x"])
    x = f"input={tmp_path / 'x.npy'}"
    one_error_line(cli("run", MODEL, "--input", f"input={tmp_path / 'nope.npy'}", check=False), 2, "file not found")
    one_error_line(cli("run", MODEL, "--input", "input", check=False), 2, "--input takes NAME=FILE.npy")
    one_error_line(cli("run", MODEL, "--input", x, "--output", tmp_path / "no" / "o.npz", check=False), 2,
                   "does not exist")
    one_error_line(cli("info", tmp_path / "nothing", check=False), 2, "model not found")
    (tmp_path / "model.json").write_text("{not json")
    one_error_line(cli("info", tmp_path / "model.json", check=False), 3)
    one_error_line(cli("run", MODEL, "--input", x, "--adapter", "no-such-adapter", check=False), 4,
                   "no adapter matches 'no-such-adapter'")
    assert not list(tmp_path.glob("*.partial*"))


def test_run_writes_the_npz_to_stdout_and_json(tmp_path):
    import io

    ref = np.load(MODEL / "reference.npz")
    np.save(tmp_path / "x.npy", ref["x"])
    out = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "-v", "run", str(MODEL), "--input",
                          f"input={tmp_path / 'x.npy'}", "--output", "-"], capture_output=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    y = np.load(io.BytesIO(out.stdout))["Identity:0"]
    np.testing.assert_allclose(y, ref["y"], atol=1e-4 * np.abs(ref["y"]).max())
    assert b"Identity:0: float32 [1, 1000]" in out.stderr          # the summary moves to stderr
    assert out.stderr.endswith(b"info: wrote stdout\n")             # -v: info log lines
    assert not (tmp_path / "-").exists()
    result = json.loads(cli("run", MODEL, "--input", f"input={tmp_path / 'x.npy'}", "--json").stdout)
    (row,) = result["outputs"]
    assert row["name"] == "Identity:0" and row["shape"] == [1, 1000] and row["dtype"] == "float32"
    assert row["min"] == pytest.approx(float(y.min()), abs=1e-6) and row["mean"] == pytest.approx(float(y.mean()))
    assert row["std"] == pytest.approx(float(y.std()), rel=1e-3) and row["nonfinite"] == 0
    one_error_line(cli("run", MODEL, "--input", f"input={tmp_path / 'x.npy'}", "--json", "--output", "-",
                       check=False), 2, "both write to stdout")


def test_info_json_for_graph_and_layers_models():
    from fixtures.layers_models import layers_fixture

    g = json.loads(cli("info", MODEL, "--json").stdout)
    assert g["format"] == "graph-model" and g["unsupported"] == []
    assert g["inputs"] == [{"key": "input", "name": "input:0", "dtype": "float32", "shape": [None, 128, 128, 3]}]
    assert g["outputs"][0]["name"] == "Identity:0" and g["weights"]["bytes"] > 0
    conv = next(r for r in g["ops"] if r["op"] == "_FusedConv2D")
    assert conv["supported"] and conv["runs_on"] and conv["count"] > 0
    assert sum(r["count"] for r in g["ops"]) == g["nodes"]
    lm = json.loads(cli("info", layers_fixture("mlp"), "--json").stdout)
    assert lm["format"] == "layers-model" and lm["params"]["total"] == 3845
    assert lm["inputs"] == [{"name": "features", "shape": [None, 20], "dtype": "float32"}]
    assert [l["class_name"] for l in lm["layers"]] == ["Dense", "BatchNormalization", "Dense", "Dense"]


def test_bench_reports_the_batch_it_ran_and_logs_to_stderr(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 128, 128, 3), np.float32))
    args = ("bench", "--json", "--runs", "1", "--warmup", "0", "--batch", "5", "--input", f"input={tmp_path / 'x.npy'}")
    out = cli(*args)
    result = json.loads(out.stdout)
    assert result["batch"] == 2 and result["inferences_per_s"] == pytest.approx(2e3 / result["median_ms"])
    assert out.stderr.startswith("warning: batch 5 not used: the inputs have 2 rows")
    assert cli("-q", *args).stderr == ""                         # -q before the command ...
    assert cli(*args, "-q").stderr == ""                         # ... or after it


def test_bench_a_layers_model_on_the_gpu():
    from fixtures.layers_models import layers_fixture

    result = json.loads(cli("bench", layers_fixture("mlp"), "--json", "--runs", "2", "--warmup", "0",
                            "--batch", "4").stdout)
    assert result["model_format"] == "layers-model" and result["model"].endswith("mlp/model.json")
    assert result["batch"] == 4 and result["executor"] == "static" and result["dispatches"] > 0
    assert result["nodes"] and {n["op"] for n in result["nodes"]} >= {"_FusedMatMul"}


def test_bench_save_compare_and_plot(tmp_path):
    saved = tmp_path / "base.json"
    first = cli("bench", "--json", "--runs", "2", "--warmup", "0", "--save", saved, "--adapter", "vulkan")
    record = json.loads(saved.read_text())
    assert record == json.loads(first.stdout) and record["record"] == "wgpu-runtime bench"
    # the baseline made 1000x faster: this run is a regression on every time
    fast = {**record, **{k: record[k] / 1000 for k in ("median_ms", "min_ms", "p90_ms", "p99_ms", "mean_ms")},
            "inferences_per_s": record["inferences_per_s"] * 1000}
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    out = cli("bench", "--json", "--runs", "2", "--warmup", "0", "--compare", tmp_path / "fast.json",
              "--adapter", "vulkan", "--plot", tmp_path / "bench.png")
    result = json.loads(out.stdout)
    comparison = result["comparison"]
    rows = {r["metric"]: r for r in comparison["rows"]}
    assert rows["median_ms"]["old"] == fast["median_ms"] and rows["median_ms"]["new"] == result["median_ms"]
    assert rows["median_ms"]["ratio"] == pytest.approx(result["median_ms"] / fast["median_ms"])
    assert rows["median_ms"]["verdict"] == "worse" and rows["inferences_per_s"]["verdict"] == "worse"
    assert comparison["verdict"] == "regression" and comparison["baseline"] == str(tmp_path / "fast.json")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = cli("bench", "--runs", "1", "--warmup", "0", "--compare", tmp_path / "fast.json", "--adapter", "vulkan",
                "--fail-on-regression", check=False)
    assert table.returncode == 1 and "verdict: regression" in table.stdout and "median_ms" in table.stdout
    (tmp_path / "other.json").write_text(json.dumps({"loss": [1, 2]}))
    one_error_line(cli("bench", "--compare", tmp_path / "other.json", check=False), 2, "not a bench record")
    (tmp_path / "text.json").write_text("hello")
    one_error_line(cli("bench", "--compare", tmp_path / "text.json", check=False), 2, "not a bench record")


BLOCKING_RUNNER = """
import sys
BLOCKED = set(sys.argv[1].split(","))

class Block:                      # as if the [convert] extra were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
from wgpu_runtime.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("blocked, args, missing", [
    ("h5py", ["--input_format=keras", "model.h5", "out"], "'h5py'"),
    ("tensorflow", ["saved_model", "out"], "'tensorflow'"),
    ("tensorflow,h5py", ["--input_format=keras", "--output_format=tfjs_graph_model", "model.h5", "out"],
     "'tensorflow', 'h5py'")])
def test_convert_without_the_extra_names_it(tmp_path, blocked, args, missing):
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / "saved_model").mkdir()
    out = subprocess.run([sys.executable, "-c", BLOCKING_RUNNER, blocked, "convert", *args], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    line = one_error_line(out, 2, missing, "pip install wgpu-runtime[convert]")
    assert len(out.stderr.strip().splitlines()) == 1 and line.startswith("error: converting needs")
    assert "tensorflow" not in out.stderr or "tensorflow" in blocked
    assert not (tmp_path / "out").exists()


def test_no_print_in_library_code():
    """Library modules log (logging.getLogger(__name__)); only the CLI writes results to stdout."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    cli_modules = {"wgpu_runtime/__main__.py", "convert/cli.py", "wgpu_runtime/conformance/run.py"}
    offenders = []
    for folder in ("wgpu_runtime", "convert"):
        for path in (root / folder).rglob("*.py"):
            rel = path.relative_to(root).as_posix()
            if rel in cli_modules:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"(?<![\w.])print\(", line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
