"""Layers models: loading every config flavor (tf_keras / Keras 2, old "Model" configs, Keras 3,
TF.js-saved), inference on both adapters and on the CPU against the framework's own outputs,
the Keras-like API, custom layers and errors.

Tolerance for outputs: |ours - theirs| <= 1e-5 + 1e-5 * |theirs|. Both sides compute in float32
with different summation orders (TF/Eigen or TF.js vs numpy references and WGSL kernels); the
fixtures' outputs are O(1) after at most a few hundred products per value, where float32
rounding is ~1e-7 relative -- measured differences are <= 3e-7. A wrong weight, axis or formula
gives errors of 1e-2 and more.
"""
import json
import shutil

import numpy as np
import pytest

import wgpu_runtime as wr
from fixtures.layers_models import inputs, keras_weights, layers_fixture, load_npz, outputs
from wgpu_runtime.errors import InputError, ModelFormatError

ATOL = RTOL = 1e-5
FRAMEWORK_FIXTURES = ["zoo_conv", "zoo_seq", "multi_io", "old_model", "keras3", "keras3_seq", "tfjs_saved"]


def _close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got.astype(np.float64) - want)
    bound = ATOL + RTOL * np.abs(want)
    assert (err <= bound).all(), f"{what}: max error {err.max():.3g}"


def _as_list(y):
    return y if isinstance(y, list) else [y]


def _model_inputs(model, arrays):
    ins = inputs(arrays)
    if len(ins) == 1:
        return list(ins.values())
    return [ins[n] for n in model.input_names]


@pytest.fixture(scope="module")
def pixel_shuffle_registered():
    class PixelShuffle(wr.Layer):
        """Depth to space, as the Keras custom layer of the fixture."""

        def call(self, ctx, x):
            return ctx.op("DepthToSpace", x, block_size=int(self.config.get("block_size", 2)))

    wr.register_layer("PixelShuffle", PixelShuffle)
    return PixelShuffle


@pytest.mark.parametrize("name", FRAMEWORK_FIXTURES + ["pixel_shuffle"])
def test_cpu_matches_framework(name, pixel_shuffle_registered):
    model = wr.load_layers_model(layers_fixture(name))
    arrays = load_npz(name)
    for k, (got, want) in enumerate(zip(_as_list(model(_model_inputs(model, arrays))), outputs(arrays))):
        _close(got, want, f"{name} output {k} (CPU)")


@pytest.mark.parametrize("name", FRAMEWORK_FIXTURES + ["pixel_shuffle"])
def test_gpu_matches_framework(name, device, pixel_shuffle_registered):
    model = wr.load_layers_model(layers_fixture(name), adapter=device.backend)
    arrays = load_npz(name)
    got = _as_list(model.predict(_model_inputs(model, arrays)))
    for k, (g, want) in enumerate(zip(got, outputs(arrays))):
        _close(g, want, f"{name} output {k} on {device.backend}")


def test_other_batch_sizes_and_chunks():
    """The graph is traced at a stand-in batch; other batch sizes (and predict's row chunks) must
    give what the CPU gives row by row."""
    model = wr.load_layers_model(layers_fixture("zoo_seq"))
    rng = np.random.default_rng(0)
    xs = [rng.integers(0, 30, (5, 12)).astype(np.float32), rng.standard_normal((5, 10, 5)).astype(np.float32)]
    cpu = model(xs)
    for batch_size in (None, 2):
        for g, c in zip(model.predict(xs, batch_size=batch_size), cpu):
            _close(g, c, f"batch_size={batch_size}")
    one = model.predict([x[:1] for x in xs])
    _close(one[0], cpu[0][:1], "batch 1")


@pytest.mark.parametrize("name", ["zoo_conv", "zoo_seq", "multi_io", "keras3"])
def test_get_weights_in_keras_order(name):
    model = wr.load_layers_model(layers_fixture(name))
    ours, theirs = model.get_weights(), keras_weights(load_npz(name))
    assert [w.shape for w in ours] == [w.shape for w in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    assert model.count_params() == sum(w.size for w in theirs)


def test_keras_like_api(capsys):
    model = wr.load_layers_model(layers_fixture("mlp"))
    assert [l.class_name for l in model.layers] == ["Dense", "BatchNormalization", "Dense", "Dense"]
    assert model.get_layer(index=1) is model.get_layer(model.layers[1].name)
    bn = model.layers[1]
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert len(model.trainable_weights) == 8 and len(model.non_trainable_weights) == 2
    bn.trainable = False
    assert len(model.trainable_weights) == 6 and len(model.non_trainable_weights) == 4
    model.trainable = False
    assert model.trainable_weights == []
    model.summary()
    text = capsys.readouterr().out
    assert "Total params: 3,845" in text and "(None, 64)" in text and "dense" in text
    assert model.inputs == [{"name": "features", "shape": (None, 20), "dtype": "float32"}]
    with pytest.raises(ValueError, match="no layer named"):
        model.get_layer("nope")


def test_set_weights_reach_the_gpu():
    model = wr.load_layers_model(layers_fixture("multi_io"))
    arrays = load_npz("multi_io")
    xs = _model_inputs(model, arrays)
    before = model.predict(xs)
    weights = model.get_weights()
    model.set_weights([w * 0.5 for w in weights])
    after_gpu, after_cpu = model.predict(xs), model(xs)
    for g, c, b in zip(after_gpu, after_cpu, before):
        _close(g, c, "after set_weights")
        assert np.abs(g - b).max() > 1e-3
    model.set_weights(weights)
    for g, b in zip(model.predict(xs), before):
        _close(g, b, "weights restored")


def test_unknown_layer_class_fails_with_its_name(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(layers_fixture("mlp"), folder)
    doc = json.loads((folder / "model.json").read_text())
    doc["modelTopology"]["model_config"]["config"]["layers"][2]["class_name"] = "FancyDense"
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match=r"unknown layer class 'FancyDense'.*register_layer"):
        wr.load_layers_model(folder)


def test_weight_mismatch_is_reported(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(layers_fixture("mlp"), folder)
    doc = json.loads((folder / "model.json").read_text())
    doc["modelTopology"]["model_config"]["config"]["layers"][1]["config"]["units"] = 63
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match="expects"):
        wr.load_layers_model(folder)


def test_input_checks():
    model = wr.load_layers_model(layers_fixture("multi_io"))
    with pytest.raises(InputError, match="2 inputs"):
        model.predict(np.zeros((2, 6), np.float32))
    with pytest.raises(InputError, match="shape"):
        model.predict([np.zeros((2, 5), np.float32), np.zeros((2, 6), np.float32)])
    arrays = inputs(load_npz("multi_io"))
    by_name = model.predict(arrays)
    for a, b in zip(by_name, model.predict([arrays["a"], arrays["b"]])):
        np.testing.assert_array_equal(a, b)


def test_graph_model_loader_refuses_layers_models():
    with pytest.raises(InputError, match="load_layers_model"):
        wr.load_graph_model(layers_fixture("mlp"))


def test_dense_chains_run_fused_on_the_gpu():
    """MatMul + BiasAdd + activation become one _FusedMatMul node in the traced graph (a Dense
    layer ending in softmax keeps its Softmax apart: evaluate() fetches the logits before it)."""
    model = wr.load_layers_model(layers_fixture("mlp"))
    x = load_npz("mlp")["x_test"]
    _, traced = model.gpu_model([x])
    ops = [n.op for n in traced.artifacts.nodes]
    assert ops.count("_FusedMatMul") == 3 and "MatMul" not in ops and "Softmax" in ops
    assert traced.logits[0][0] == "Softmax"
    _close(model.predict(x), model(x), "fused graph vs CPU")


@pytest.mark.parametrize("name", ["keras3", "tfjs_saved", "zoo_seq"])
def test_save_and_load_back(name, tmp_path):
    model = wr.load_layers_model(layers_fixture(name))
    arrays = load_npz(name)
    xs = _model_inputs(model, arrays)
    model.save(tmp_path / name)
    again = wr.load_layers_model(tmp_path / name)
    for a, b in zip(_as_list(again(xs)), _as_list(model(xs))):
        np.testing.assert_array_equal(a, b)
    original = json.loads((layers_fixture(name) / "model.json").read_text())
    saved = json.loads((tmp_path / name / "model.json").read_text())
    assert saved["modelTopology"] == original["modelTopology"]
    assert [w["name"] for g in saved["weightsManifest"] for w in g["weights"]] == \
        [w["name"] for g in original["weightsManifest"] for w in g["weights"]]
    if name == "tfjs_saved":             # a TF.js-written model, saved here, loads back in TF.js
        from tfjs_harness import require_tfjs, tfjs_predict

        require_tfjs()
        (y,) = tfjs_predict(tmp_path / name, {"img": xs[0], "seq": xs[1]}, kind="layers")
        _close(y, outputs(arrays)[0], "TF.js reading our save")
