"""TF Decision Forests models (SimpleML* host ops, wgpu_runtime/ops/tfdf.py): tiny seeded TF-DF
models are trained, saved, converted by the official converter (which writes the YDF files to
assets.zip next to model.json), run by the runtime on both adapters and compared with
TensorFlow's own predictions of the same inputs.

Tolerance 1e-6: TensorFlow's SimpleML inference op and ydf run the same YDF inference code in
float32 on the host; the runtime only packs the features and, for a binary classifier, forms
[1 - p, p] as TF-DF's kernel does, so any difference is float32 rounding at most.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")

import wgpu_runtime  # noqa: E402
from wgpu_runtime.errors import WgpuRuntimeError  # noqa: E402

# Same default and override as conftest.py (WGPU_TEST_ADAPTERS="vulkan,gl" substrings).
ADAPTERS = [a for a in os.environ.get("WGPU_TEST_ADAPTERS", "vulkan,gl").split(",") if a]

TOL = 1e-6


def _data(n=160, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]}


def _queries():
    q = _data(24, seed=1)
    q["a"][3] = np.nan          # a missing value: NaN in TF-DF's numerical bank
    q["c"][5] = np.nan
    return q


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import tensorflow as tf
    import tensorflow_decision_forests as tfdf
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as conv

    d = _data()
    made = {}
    labels = {
        "rf_binary": ((d["a"] + 0.5 * d["b"] > 0).astype(np.int64),
                      lambda: tfdf.keras.RandomForestModel(num_trees=5, max_depth=4, random_seed=1, verbose=0)),
        "gbt_3class": ((d["a"] > 0.4).astype(np.int64) + (d["c"] > 0).astype(np.int64),
                       lambda: tfdf.keras.GradientBoostedTreesModel(num_trees=6, max_depth=3, random_seed=1,
                                                                    verbose=0)),
        "gbt_regression": ((2 * d["a"] - d["b"] * d["c"]).astype(np.float32),
                           lambda: tfdf.keras.GradientBoostedTreesModel(
                               num_trees=6, max_depth=3, random_seed=1, verbose=0,
                               task=tfdf.keras.Task.REGRESSION)),
    }
    q = _queries()
    for name, (y, make) in labels.items():
        root = tmp_path_factory.mktemp(name)
        model = make()
        model.fit(tf.data.Dataset.from_tensor_slices((d, y)).batch(64), verbose=0)
        want = np.asarray(model.predict({k: v for k, v in q.items()}, verbose=0))
        model.save(str(root / "saved_model"))
        conv.convert_tf_saved_model(str(root / "saved_model"), str(root / "js"))
        made[name] = (root / "js", want)
    return made


@pytest.mark.parametrize("name", ["rf_binary", "gbt_3class", "gbt_regression"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_tfdf_model_matches_tensorflow(models, name, adapter):
    folder, want = models[name]
    assert (folder / "assets.zip").is_file()
    model = wgpu_runtime.load_graph_model(folder, adapter=adapter)
    got = np.asarray(model.predict(_queries()))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    np.testing.assert_allclose(np.asarray(model.predict(_queries())), want, rtol=0, atol=TOL)  # loaded once


def test_tfdf_model_files_missing_is_a_clear_error(models, tmp_path):
    import shutil

    folder, _ = models["rf_binary"]
    copy = tmp_path / "js"
    shutil.copytree(folder, copy)
    (copy / "assets.zip").unlink()
    model = wgpu_runtime.load_graph_model(copy, adapter=ADAPTERS[0])
    with pytest.raises(WgpuRuntimeError, match="assets.zip"):
        model.predict(_queries())


def test_tfdf_without_ydf_names_the_package(monkeypatch, tmp_path):
    import sys

    from wgpu_runtime.ops.tfdf import TFDFModel

    monkeypatch.setitem(sys.modules, "ydf", None)     # makes `import ydf` fail
    with pytest.raises(WgpuRuntimeError, match="pip install ydf"):
        TFDFModel().load(tmp_path, "prefix")
