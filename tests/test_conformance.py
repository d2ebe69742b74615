"""The conformance command (python -m wgpu_runtime conformance) and the shared tolerance policy.

* JSON on a small op subset, on every adapter the tests use, with a Markdown report;
* a deliberately broken model -- a registry op's lowering swapped for a wrong one in-process, or
  stored reference outputs perturbed -- fails, names its first divergent node, exits non-zero,
  and the HTML report is written;
* the tolerance policy's arithmetic (ULPs, sqrt(K) growth, float16, exact integers)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from wgpu_runtime import tolerance
from wgpu_runtime.ops import REGISTRY

from fixtures.tiny_models import loop_model, tiny_model

ADAPTERS = [a for a in os.environ.get("WGPU_TEST_ADAPTERS", "vulkan,gl").split(",") if a]
SUBSET = "Relu,Add*,Sum"          # elementwise, broadcasting binary (Add, AddN, AddV2), a reduction


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "conformance", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def in_process(capsys, *args) -> tuple[int, str, str]:
    from wgpu_runtime.__main__ import main

    code = main(["conformance", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _adapter_entry(report: dict, query: str) -> dict:
    hits = [a for a in report["adapters"] if query.lower() in (a["adapter"] + " " + a["backend"]).lower()]
    assert hits, f"no adapter matching {query!r} in {[a['adapter'] for a in report['adapters']]}"
    return hits[0]


# ------------------------------------------------------------------------------------ the CLI
def test_json_on_an_op_subset_on_every_adapter(tmp_path):
    report_md = tmp_path / "conformance.md"
    out = cli("--ops", SUBSET, "--adapter", "all", "--json", "--report", report_md)
    assert out.returncode == 0, out.stderr + out.stdout[-3000:]
    report = json.loads(out.stdout)               # nothing but the JSON object on stdout
    ops = ["Add", "AddN", "AddV2", "Relu", "Sum"]
    n_cases = sum(len(REGISTRY[o].cases) for o in ops)
    assert report["summary"]["passed"] is True
    assert report["summary"]["op_cases"] == n_cases * len(report["adapters"])
    for query in ADAPTERS:
        a = _adapter_entry(report, query)
        assert a["passed"] and a["error"] == ""
        assert a["ops"]["cases"] == a["ops"]["passed"] == n_cases and a["ops"]["failed"] == 0
        assert sorted(a["ops"]["per_op"]) == ops
        assert all(d["worst_error_ulps"] <= d["bound_ulps"] for d in a["ops"]["per_op"].values())
    text = report_md.read_text()
    assert text.startswith("# Conformance report") and "| adapter |" in text and "AddV2" in text
    assert not list(tmp_path.glob(".*partial"))


def test_user_errors_are_one_line_with_their_exit_status(tmp_path, capsys):
    code, _, err = in_process(capsys, "--ops", "NoSuchOp*", "--adapter", "all")
    assert code == 2 and err.strip() == "error: --ops 'NoSuchOp*' matches no registry op"
    code, _, err = in_process(capsys, "--ops", "Relu", "--report", tmp_path / "r.txt")
    assert code == 2 and "the extension picks the format" in err and len(err.strip().splitlines()) == 1
    code, _, err = in_process(capsys, "--ops", "Relu", "--adapter", "no-such-adapter")
    assert code == 4 and "no adapter matches 'no-such-adapter'" in err   # a runtime failure (exit_codes.py)


# ----------------------------------------------------------------------------- broken models
def test_a_wrong_kernel_is_caught_at_its_node(tmp_path, capsys, monkeypatch):
    model = tiny_model(tmp_path / "tiny")
    # Relu lowered as a plain view of its input (as if its kernel did nothing): negatives leak
    monkeypatch.setattr(REGISTRY["Relu"], "lower", lambda ctx: ctx.alias())
    # the graph as written: the load-time optimizer would fuse Relu into the matmul's epilogue, so
    # the broken stand-alone Relu kernel would never run
    monkeypatch.setenv("WGPU_RUNTIME_OPTIMIZE", "0")
    report_html = tmp_path / "report.html"
    code, out, _ = in_process(capsys, model, "--no-ops", "--adapter", ADAPTERS[0], "--json",
                              "--report", report_html)
    assert code == 1
    report = json.loads(out)
    assert report["summary"]["passed"] is False and report["summary"]["models_failed"] == 1
    (m,) = _adapter_entry(report, ADAPTERS[0])["models"]["results"]
    assert m["passed"] is False
    failing = [c for c in m["checks"] if not c["passed"]]
    assert failing and failing[0]["against"] == "numpy reference executor"
    d = m["first_divergent_node"]
    assert (d["node"], d["op"], d["kind"]) == ("dense/Relu", "Relu", "node"), d
    assert "T" in d["attrs"] and "ULP" in d["error"] and d["inputs"] == ["dense/BiasAdd: float32[1, 16]"]
    page = report_html.read_text()
    assert page.startswith("<!doctype html>") and "dense/Relu" in page and "FAIL" in page


def test_a_perturbed_stored_reference_fails_and_is_named(tmp_path):
    model = tiny_model(tmp_path / "tiny", with_io=True)
    out = cli(model, "--no-ops", "--adapter", ADAPTERS[0], "--json")
    assert out.returncode == 1, out.stderr
    (m,) = json.loads(out.stdout)["adapters"][0]["models"]["results"]
    by_ref = {c["against"]: c for c in m["checks"]}
    assert by_ref["numpy reference executor"]["passed"] is True      # the GPU is right...
    assert by_ref["stored io.npz out:y"]["passed"] is False          # ...the stored output is not
    d = m["first_divergent_node"]
    assert (d["node"], d["kind"]) == ("Identity", "stored reference"), d
    assert "output 'y'" in d["error"]
    table = cli(model, "--no-ops", "--adapter", ADAPTERS[0])       # the human table, piped
    assert table.returncode == 1 and "first divergent node: Identity" in table.stdout
    assert "\x1b[" not in table.stdout and "\x1b[" not in table.stderr   # no colours/progress when piped


def _loop_model(folder):
    """x[2] -> a v1 while loop (i = 0; while i < 5: i += 1, x *= 2) -> out: x * 32."""
    loop_model(folder, (2,), "Mul", np.float32(2), 5)
    x = np.float32([1.5, -2.0])
    np.savez(folder / "io.npz", **{"in:x": x, "out:out:0": x * 32})
    return folder


def test_a_control_flow_model_is_judged_by_its_outputs(tmp_path, capsys, monkeypatch):
    model = _loop_model(tmp_path / "loop")
    code, out, _ = in_process(capsys, model, "--no-ops", "--adapter", ADAPTERS[0], "--json")
    (m,) = json.loads(out)["adapters"][0]["models"]["results"]
    assert code == 0 and m["passed"], m
    assert {c["against"] for c in m["checks"]} == {"numpy reference executor", "stored io.npz out:out:0"}
    monkeypatch.setattr(REGISTRY["Mul"], "lower", lambda ctx: ctx.alias())      # x never doubles
    code, out, _ = in_process(capsys, model, "--no-ops", "--adapter", ADAPTERS[0], "--json")
    (m,) = json.loads(out)["adapters"][0]["models"]["results"]
    assert code == 1 and not m["passed"]
    assert all(not c["passed"] for c in m["checks"])        # both references agree the GPU is wrong
    d = m["first_divergent_node"]
    assert (d["node"], d["kind"]) == ("out", "unlocated") and "dynamic executor" in d["error"]


# -------------------------------------------------------------------------- tolerance policy
def test_tolerance_units_are_ulps_of_max_1_and_want():
    eps = 2.0 ** -23
    t = tolerance.Tolerance(4, "test")
    want = np.array([0.5, 1.0, 8.0], np.float32)
    assert tolerance.compare(want + np.float32(3 * eps * np.array([1, 1, 8])), want, t).ok
    c = tolerance.compare(want + np.float32(np.array([0, 0, 5 * 8 * eps])), want, t)
    assert not c.ok and math.isclose(c.ulps, 5.0) and "5 ULP" in c.message
    # per tensor: the unit is eps * max|want|, so a small entry may be off by more
    assert tolerance.compare(np.float32([1e-3 + 3 * 8 * eps, 8.0]), np.float32([1e-3, 8.0]), t, per="tensor").ok
    # exact for integers and booleans; NaN where the reference has NaN; equal infinities
    assert not tolerance.compare(np.int32([1, 2]), np.int32([1, 3]), t).ok
    assert tolerance.compare(np.float32([np.nan, np.inf]), np.float32([np.nan, np.inf]), t).ok
    assert not tolerance.compare(np.float32([np.nan]), np.float32([1.0]), t).ok
    assert not tolerance.compare(np.zeros(3, np.float32), np.zeros(4, np.float32), t).ok


def test_accumulating_ops_grow_by_sqrt_k_and_float16_is_looser():
    mm = REGISTRY["MatMul"]
    stated = tolerance.Tolerance.from_rtol(*mm.tol).ulps
    small = tolerance.op_tolerance(mm, {}, [np.zeros((2, 8)), np.zeros((8, 3))], [np.zeros((2, 3))])
    assert small.ulps == stated                         # K = 8: the stated bound governs
    k = 1 << 16
    big = tolerance.op_tolerance(mm, {"transpose_a": True}, [np.zeros((k, 2)), np.zeros((k, 3))], [np.zeros((2, 3))])
    assert big.ulps == tolerance.ACCUMULATION_ULPS * 256 and f"K={k}" in big.reason
    relu = tolerance.op_tolerance(REGISTRY["Relu"], {}, [np.zeros(k)], [np.zeros(k)])
    assert relu.ulps == tolerance.Tolerance.from_rtol(*REGISTRY["Relu"].tol).ulps     # element-wise
    half = tolerance.op_tolerance(REGISTRY["Relu"], {}, [np.zeros(3)], [np.zeros(3, np.float16)])
    assert half.dtype == "float16" and half.rtol == pytest.approx(relu.ulps * 2.0 ** -10)
