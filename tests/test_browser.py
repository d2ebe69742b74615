"""Converted models where users deploy them: real TensorFlow.js 4.22 in headless Chromium (Debian's
chromium), on its cpu, webgl and webgpu backends (WebGL and WebGPU on SwiftShader), models
loaded over loopback HTTP (tests/browser_harness.py), against TensorFlow's outputs.

Representative conversions, made as a user makes them (``python -m wgpu_runtime convert`` in
subprocesses): a tf_keras CNN (conv, batch norm, depthwise, ReLU6, ELU, PReLU, softmax) as a
graph model and as a layers model, and a Keras 3 CNN (.keras) as a layers model. All run in ONE
browser. tools/browser_check.py (every converter source) is checked as a command too.

Tolerances: browser_harness.TOLERANCE (cpu: the graph converter tests' FLOAT_TOL; webgl /
webgpu: float32 as well, 5x looser for shader math that is not correctly rounded; the reasons are
beside it). Chromium and the npm packages come from tools/setup.sh: their absence FAILS.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser_harness import (BACKENDS, CHROMIUM_FLAGS, TOLERANCE, BrowserError, browser_predict,
                             browser_predict_many, require_browser)

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}

# case -> (source, source file, --input_format, --output_format, TF.js loader)
CASES = {
    "tf_keras_cnn-graph": ("tf_keras_cnn", "tf_keras_cnn.h5", "keras", "tfjs_graph_model", "graph"),
    "tf_keras_cnn-layers": ("tf_keras_cnn", "tf_keras_cnn.h5", "keras", "tfjs_layers_model", "layers"),
    "keras3_cnn-layers": ("keras3_cnn", "keras3_cnn.keras", "keras_keras", "tfjs_layers_model", "layers"),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    require_browser()                      # fail before spending time on TensorFlow
    from fixtures.convert_sources import keras3_cnn, tf_keras_cnn

    work = tmp_path_factory.mktemp("browser_sources")
    return {"tf_keras_cnn": tf_keras_cnn(work), "keras3_cnn": keras3_cnn(work)}


@pytest.fixture(scope="module")
def converted(sources, tmp_path_factory) -> dict[str, Path]:
    """The CLI, as a user runs it; the conversions run side by side."""
    out = tmp_path_factory.mktemp("browser_converted")
    procs = {}
    for case, (src, file, fmt_in, fmt_out, _) in CASES.items():
        cmd = [sys.executable, "-P", "-m", "wgpu_runtime", "convert", f"--input_format={fmt_in}",
               f"--output_format={fmt_out}", str(sources[src].path.parent / file), str(out / case)]
        procs[case] = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for case, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{case}: {err[-2000:]}"
        assert (out / case / "model.json").is_file()
    return {case: out / case for case in CASES}


def _refs(source, model_dir: Path, kind: str) -> list[np.ndarray]:
    """TensorFlow's outputs in the order TF.js returns them."""
    import json

    mj = json.loads((model_dir / "model.json").read_text())
    if kind == "graph":
        keys = list(mj["signature"]["outputs"])
    else:
        keys = [o[0] for o in mj["modelTopology"]["model_config"]["config"]["output_layers"]]
    return [source.ref[k] for k in keys]


@pytest.fixture(scope="module")
def browser(converted, sources):
    jobs = [{"model_dir": converted[c], "inputs": sources[src].feeds, "kind": kind}
            for c, (src, *_, kind) in CASES.items()]
    run = browser_predict_many(jobs, BACKENDS)
    return {"backends": run.backends, "results": dict(zip(CASES, run.results))}


def test_every_backend_is_up(browser):
    for backend in BACKENDS:
        assert not browser["backends"][backend].startswith(("unavailable", "the page never")), browser["backends"]
    assert "float32 render targets" in browser["backends"]["webgl"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_browser_reproduces_tensorflow(case, backend, browser, converted, sources):
    src, *_, kind = CASES[case]
    result = browser["results"][case][backend]
    if isinstance(result, BrowserError):
        pytest.fail(f"{result} ({backend}: {browser['backends'][backend]})")
    refs = _refs(sources[src], converted[case], kind)
    assert len(result) == len(refs)
    for k, (got, ref) in enumerate(zip(result, refs)):
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, **TOLERANCE[backend], err_msg=f"{case} on {backend}: output {k}")


def test_unavailable_backend_fails_with_its_reason(converted, sources):
    """Chromium on Linux exposes WebGPU only with --enable-unsafe-webgpu: without it, the webgpu
    backend is a failure that says why, not a skip and not a silent fall-back to another backend."""
    flags = [f for f in CHROMIUM_FLAGS if f != "--enable-unsafe-webgpu"]
    model = converted["tf_keras_cnn-graph"]
    run = browser_predict_many([{"model_dir": model, "inputs": sources["tf_keras_cnn"].feeds}],
                               ("cpu", "webgpu"), flags=flags)
    assert run.backends["webgpu"].startswith("unavailable: ")
    error = run.results[0]["webgpu"]
    assert isinstance(error, BrowserError) and "backend unavailable" in str(error)
    assert "navigator.gpu" in str(error) or "adapter" in str(error), error
    assert isinstance(run.results[0]["cpu"], list)          # the other backend still ran
    with pytest.raises(BrowserError, match="webgpu backend .* unavailable"):
        browser_predict(model, sources["tf_keras_cnn"].feeds, backends=("webgpu",), flags=flags)


def test_model_that_tfjs_refuses_is_reported_per_backend(converted, sources, tmp_path):
    """A layers model naming a layer class TF.js does not know: each backend reports TF.js's error."""
    bad = tmp_path / "bad"
    shutil.copytree(converted["tf_keras_cnn-layers"], bad)
    text = (bad / "model.json").read_text()
    (bad / "model.json").write_text(text.replace('"class_name": "PReLU"', '"class_name": "NoSuchLayer"', 1))
    run = browser_predict_many([{"model_dir": bad, "inputs": sources["tf_keras_cnn"].feeds, "kind": "layers"}],
                               ("cpu",))
    error = run.results[0]["cpu"]
    assert isinstance(error, BrowserError) and "NoSuchLayer" in str(error), error


def test_no_result_in_time_is_an_error(converted, sources):
    with pytest.raises(RuntimeError, match=r"no results from chromium after 0.5 s \(0 of 3 came back"):
        browser_predict_many([{"model_dir": converted["tf_keras_cnn-graph"], "inputs": sources["tf_keras_cnn"].feeds}],
                             BACKENDS, timeout_s=0.5)


def test_browser_check_command(converted, sources, tmp_path):
    """tools/browser_check.py on model folders with stored inputs and TensorFlow's outputs
    (io.npz): a table backend x model, exit 0 when all match; one model whose stored output is
    off by 1e-3 turns the run into exit 1 naming it, the others still pass."""
    dirs = []
    for case in ("tf_keras_cnn-graph", "keras3_cnn-layers"):
        src, *_, kind = CASES[case]
        folder = tmp_path / case
        shutil.copytree(converted[case], folder)
        s = sources[src]
        np.savez(folder / "io.npz", **{f"in:{k}": v for k, v in s.feeds.items()},
                 **{f"out:{k}": v for k, v in s.ref.items()})
        dirs.append(folder)
    cmd = [sys.executable, str(ROOT / "tools" / "browser_check.py"), *map(str, dirs)]
    ok = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-3000:]
    header = next(line for line in ok.stdout.splitlines() if line.startswith("model"))
    assert header.split() == ["model", *BACKENDS]
    for folder in dirs:
        row = next(line for line in ok.stdout.splitlines() if line.startswith(f"{folder} "))
        assert len(row.split()) == 1 + len(BACKENDS) and "FAIL" not in row

    off = tmp_path / "off"
    shutil.copytree(dirs[0], off)
    with np.load(off / "io.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["out:probs"] = arrays["out:probs"] + np.float32(1e-3)
    np.savez(off / "io.npz", **arrays)
    bad = subprocess.run([*cmd, str(off)], env=ENV, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1, bad.stdout + bad.stderr[-3000:]
    row = next(line for line in bad.stdout.splitlines() if line.startswith(f"{off} "))
    assert row.split()[1:] == ["FAIL", "1.00e-03"] * len(BACKENDS), row
    assert f"{off} on cpu: output 0: max abs error" in bad.stderr
    assert bad.stdout.count("FAIL") == len(BACKENDS)          # the two good models still pass
