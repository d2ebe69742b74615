"""TensorFlow in a process where the runtime has already opened an adapter (README, Known issues;
convert/tensorflow_loader.py).

Opening any adapter enumerates them all; Mesa's OpenGL driver then puts its libLLVM in the global
symbol scope, and a TensorFlow imported afterwards binds its own LLVM symbols to Mesa's: the
first graph optimisation crashes (SIGSEGV). The converter imports TensorFlow isolated from it.
Each case runs in a fresh subprocess, in the order a user's script would."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import ADAPTERS

ADAPTER = ADAPTERS[0]

OPEN_ADAPTER = f"""
import sys
import numpy as np
import wgpu_runtime as wr
from wgpu_runtime.models import default_model_path
from wgpu_runtime.convert.tensorflow_loader import llvm_in_global_scope
ref = np.load(default_model_path() / "reference.npz")
wr.load_graph_model(default_model_path(), adapter={ADAPTER!r}).predict(ref["x"])
assert "tensorflow" not in sys.modules
if not llvm_in_global_scope():
    print("NO LLVM IN THE GLOBAL SCOPE")
    sys.exit(0)
"""

SAFE_ORDER = OPEN_ADAPTER + f"""
from wgpu_runtime.convert.cli import main
rc = main(["--input_format=tfjs_layers_model", "--output_format=tfjs_graph_model", sys.argv[1], sys.argv[2]])
assert rc == 0, rc
x = np.load(sys.argv[3])
y = wr.load_graph_model(sys.argv[2], adapter={ADAPTER!r}).predict(x)
np.save(sys.argv[4], y)
tf = sys.modules["tensorflow"]          # imported by the converter; a graph function still runs
print("tf.function", float(tf.function(lambda t: t * 2.0)(tf.ones((2,))).numpy().sum()))
"""

PLAIN_IMPORT = OPEN_ADAPTER + """
import tensorflow as tf
print("imported", flush=True)
print(float(tf.function(lambda t: t * 2.0)(tf.ones((2,))).numpy().sum()))
"""


def _run(code, *args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _skip_without_hazard(proc):
    if "NO LLVM IN THE GLOBAL SCOPE" in proc.stdout:
        pytest.skip(f"opening {ADAPTER!r} put no LLVM in the global scope here: the crash cannot arise")


def _tfjs_dense_model(folder):
    """A TF.js layers model (Dense 4->3, tanh) written by hand: no TensorFlow in this process."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.5, (4, 3)).astype(np.float32)
    bias = rng.normal(0, 0.5, 3).astype(np.float32)
    dense = {"class_name": "Dense", "config": {"name": "dense", "trainable": True, "units": 3, "activation": "tanh",
                                               "use_bias": True, "batch_input_shape": [None, 4], "dtype": "float32"}}
    model = {"format": "layers-model", "generatedBy": "keras v2.15.0", "convertedBy": "TensorFlow.js Converter v4.22.0",
             "modelTopology": {"keras_version": "2.15.0", "backend": "tensorflow",
                               "model_config": {"class_name": "Sequential",
                                                "config": {"name": "seq", "layers": [dense]}}},
             "weightsManifest": [{"paths": ["weights.bin"], "weights": [
                 {"name": "dense/kernel", "shape": [4, 3], "dtype": "float32"},
                 {"name": "dense/bias", "shape": [3], "dtype": "float32"}]}]}
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(model))
    (folder / "weights.bin").write_bytes(kernel.tobytes() + bias.tobytes())
    return folder / "model.json", kernel, bias


def test_converter_imports_tensorflow_safely_after_an_adapter_was_opened(tmp_path):
    src, kernel, bias = _tfjs_dense_model(tmp_path / "src")
    x = np.random.default_rng(1).normal(0, 1, (5, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = _run(SAFE_ORDER, src, tmp_path / "out", tmp_path / "x.npy", tmp_path / "y.npy", cwd=tmp_path)
    _skip_without_hazard(proc)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "tf.function 4.0" in proc.stdout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.tanh(x @ kernel + bias), rtol=1e-5, atol=1e-6)


def test_a_plain_tensorflow_import_after_an_adapter_crashes(tmp_path):
    """The known limitation (README, Known issues): code of the user's own that imports TensorFlow
    after an adapter was opened, not through wgpu_runtime.convert.import_tensorflow, dies with
    SIGSEGV at its first graph function (TensorFlow's MLIR calls llvm::raw_ostream::write, bound to
    Mesa's libLLVM). The runtime never imports TensorFlow, so it cannot order that import itself."""
    proc = _run(PLAIN_IMPORT, cwd=tmp_path)
    _skip_without_hazard(proc)
    assert "imported" in proc.stdout, proc.stderr[-3000:]    # the import itself survives
    assert proc.returncode == -signal.SIGSEGV, (
        f"exit status {proc.returncode}: the crash did not happen; update README's Known issues\n"
        f"{proc.stdout[-500:]}")
