"""Layers models: Keras (tf_keras and Keras 3; .h5, .keras, SavedModel) -> TF.js layers model,
checked in REAL TensorFlow.js 4.22 (Node, CPU backend: tests/tfjs_harness.py) against
TensorFlow's outputs; tf_keras .h5 results compared byte for byte with the official converter's;
tfjs_layers_model -> tfjs_layers_model / keras; bad inputs.

One TensorFlow process (this one) builds seeded models, converts them and computes the
references; all TF.js runs go through ONE Node process (the `tfjs` fixture).

Tolerances:
- FLOAT_TOL (atol 1e-5 + rtol 1e-5): TF.js's CPU kernels and TF's (Eigen) sum in different
  orders in float32; outputs are O(1) and every output sums at most ~200 products, so the
  difference is a few float32 ulps of the partial sums (observed <= 2.4e-7: 40x margin).
- Quantized models are compared with TensorFlow running the SAME dequantized weights (the
  model rebuilt in tf_keras from our model.json, weights decoded as TF.js decodes them), so the
  same FLOAT_TOL applies; that quantization really happened is checked on the manifest, and its
  effect against the float model is bounded (QUANT_TOL: a weight moves by at most half a step,
  range/255 for uint8 (~0.01 here), range/65535 for uint16, 2^-11 relative for float16; summed
  over <= ~200 products of O(1) inputs; observed uint8 2.6e-3, uint16 1.1e-6, float16 1.8e-4).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from tfjs_harness import TfjsError, require_tfjs, tfjs_predict_many
from wgpu_runtime.convert.errors import ConversionError
from wgpu_runtime.convert.layers import convert_layers

FLOAT_TOL = {"atol": 1e-5, "rtol": 1e-5}
QUANT_TOL = {"uint8": 0.05, "uint16": 1e-3, "float16": 2e-3}   # max abs vs the float model, outputs O(1)


# ---------------------------------------------------------------- source models (one TF process)

def _models(K):
    """The same three architectures in tf_keras (K = tf_keras) and Keras 3 (K = keras)."""
    L = K.layers
    i = K.Input((16, 16, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(i)
    x = L.BatchNormalization(name="bn")(x)
    x = L.DepthwiseConv2D(3, name="dw")(x)
    x = L.SeparableConv2D(6, 3, activation="relu", name="sep")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Conv2D(4, 1, kernel_regularizer=K.regularizers.L2(1e-3), name="proj")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.2, name="drop")(x)
    cnn = K.Model(i, L.Dense(5, activation="softmax", name="probs")(x), name="cnn")
    rnn = K.Sequential([K.Input((7,), dtype="int32", name="tokens"), L.Embedding(20, 8, name="emb"),
                        L.LSTM(6, return_sequences=True, name="lstm"), L.TimeDistributed(L.Dense(4), name="td"),
                        L.Bidirectional(L.GRU(5, reset_after=False), name="bigru"),
                        L.Dense(3, name="logits")], name="rnn")
    a, b = K.Input((10,), name="a"), K.Input((4,), name="b")
    sub = K.Sequential([K.Input((14,)), L.Dense(6, activation="tanh", name="sub_d1"), L.Dense(6, name="sub_d2")],
                       name="sub")
    c = L.Concatenate(name="cat")([a, b])
    s = L.Add(name="add")([sub(c), L.Dense(6, name="skip")(c)])
    multi = K.Model([a, b], [L.Dense(2, name="o1")(s), L.Activation("sigmoid", name="o2")(s)], name="multi")
    return {"cnn": cnn, "rnn": rnn, "multi": multi}


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    values = []
    for v in model.weights:
        shape, name = tuple(v.shape), getattr(v, "path", v.name)
        if "moving_variance" in name:
            values.append(rng.uniform(0.5, 1.5, shape))
        else:
            values.append(rng.normal(0.0, 0.3, shape))
    model.set_weights([v.astype(np.float32) for v in values])


def _inputs(kind, rng):
    if kind == "cnn":
        return [rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)]
    if kind == "rnn":
        return [rng.integers(0, 20, (2, 7)).astype(np.int32)]
    return [rng.uniform(-1, 1, (2, 10)).astype(np.float32), rng.uniform(-1, 1, (2, 4)).astype(np.float32)]


def _predict(model, inputs):
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """{name: (path, input_format, inputs, TF outputs)} for every source model file."""
    import keras
    import tf_keras

    root = tmp_path_factory.mktemp("sources")
    out = {}
    for tag, K in (("k2", tf_keras), ("k3", keras)):
        for seed, (kind, model) in enumerate(_models(K).items()):
            _randomize(model, seed)
            x = _inputs(kind, np.random.default_rng(100 + seed))
            ref = _predict(model, x)
            h5 = root / f"{tag}_{kind}.h5"
            model.save(str(h5))
            out[f"{tag}_{kind}_h5"] = (h5, "keras", x, ref)
            if tag == "k3" or kind == "cnn":      # tf_keras writes its own .keras too
                path = root / f"{tag}_{kind}.keras"
                model.save(str(path))
                out[f"{tag}_{kind}_keras"] = (path, "keras_keras", x, ref)
            if tag == "k2" and kind == "cnn":
                path = root / "k2_cnn_savedmodel"
                model.save(str(path), save_format="tf")
                out["k2_cnn_savedmodel"] = (path, "keras_saved_model", x, ref)
    return out


# ---------------------------------------------------------------- conversions

# id: (source, options); each output must load in TF.js and reproduce TensorFlow.
VARIANTS = {
    "k2_cnn": ("k2_cnn_h5", {}),
    "k2_rnn": ("k2_rnn_h5", {}),
    "k2_multi": ("k2_multi_h5", {}),
    "k3_cnn_h5": ("k3_cnn_h5", {}),
    "k3_rnn_h5": ("k3_rnn_h5", {}),
    "k3_multi_h5": ("k3_multi_h5", {}),
    "k3_cnn_keras": ("k3_cnn_keras", {}),
    "k3_rnn_keras": ("k3_rnn_keras", {}),
    "k3_multi_keras": ("k3_multi_keras", {}),
    "k2_cnn_savedmodel": ("k2_cnn_savedmodel", {}),
    "k2_cnn_keras": ("k2_cnn_keras", {}),
    "k2_cnn_uint8": ("k2_cnn_h5", {"quantize": {"uint8": None}}),
    "k2_cnn_uint16": ("k2_cnn_h5", {"quantize": {"uint16": None}}),
    "k2_cnn_float16": ("k2_cnn_h5", {"quantize": {"float16": None}}),
    "k3_multi_keras_mixed": ("k3_multi_keras", {"quantize": {"uint8": ["sub_d*"], "float16": None}}),
    "k2_rnn_shard64_split": ("k2_rnn_h5", {"weight_shard_size_bytes": 64, "split_weights_by_layer": True}),
    "k3_cnn_shard1000_uint16": ("k3_cnn_h5", {"weight_shard_size_bytes": 1000, "quantize": {"uint16": None}}),
    # tfjs_layers_model -> tfjs_layers_model: re-shard and quantize one of our own outputs
    "k3_rnn_retfjs_float16": ("@k3_rnn_keras", {"weight_shard_size_bytes": 300, "quantize": {"float16": None}}),
}


@pytest.fixture(scope="module")
def converted(sources, tmp_path_factory):
    """{variant: (model dir, source name)}, converted in order (re-conversions after their input)."""
    root = tmp_path_factory.mktemp("converted")
    out = {}
    for vid, (src, opts) in VARIANTS.items():
        if src.startswith("@"):
            path, fmt, base = out[src[1:]][0], "tfjs_layers_model", out[src[1:]][1]
        else:
            path, fmt, base = sources[src][0], sources[src][1], src
        dst = convert_layers(path, root / vid, fmt, "tfjs_layers_model", opts)
        assert dst == root / vid / "model.json"
        out[vid] = (root / vid, base)
    return out


@pytest.fixture(scope="module")
def official(sources, tmp_path_factory):
    """The official converter's outputs (tensorflowjs 4.22, in this process) for tf_keras .h5."""
    from tensorflowjs.converters.converter import (
        dispatch_keras_h5_to_tfjs_layers_model_conversion as convert,
    )

    root = tmp_path_factory.mktemp("official")
    cases = {"k2_cnn": {}, "k2_rnn": {}, "k2_multi": {},
             "k2_cnn_uint8": {"quantization_dtype_map": {"uint8": True}},
             "k2_rnn_shard64_split": {"weight_shard_size_bytes": 64, "split_weights_by_layer": True}}
    out = {}
    for vid, kwargs in cases.items():
        convert(str(sources[VARIANTS[vid][0]][0]), str(root / vid), **kwargs)
        out[vid] = root / vid
    # Keras 3 .h5: the official converter writes it (TF.js then refuses it: see test below).
    convert(str(sources["k3_multi_h5"][0]), str(root / "k3_multi_h5"))
    out["k3_multi_h5"] = root / "k3_multi_h5"
    return out


@pytest.fixture(scope="module")
def dequantized_refs(converted, sources):
    """TF outputs of each quantized variant's OWN weights (decoded as TF.js decodes them):
    the model rebuilt in tf_keras from our model.json."""
    from wgpu_runtime.convert.layers.to_keras import build_tf_keras_model

    from wgpu_runtime.format import load_artifacts

    refs = {}
    for vid, (folder, base) in converted.items():
        art = load_artifacts(folder)
        if not any("quantization" in s for s in art.weight_specs):
            continue
        model = build_tf_keras_model(art.model_topology["model_config"], art.weights, folder)
        refs[vid] = _predict(model, sources[base][2])
    return refs


@pytest.fixture(scope="module")
def tfjs(converted, official, sources):
    """Every TF.js run of this module, in one Node process: {job id: outputs | TfjsError}."""
    require_tfjs()
    jobs = {vid: (folder, sources[base][2]) for vid, (folder, base) in converted.items()}
    jobs["official:k2_cnn"] = (official["k2_cnn"], sources["k2_cnn_h5"][2])
    jobs["official:k3_multi_h5"] = (official["k3_multi_h5"], sources["k3_multi_h5"][2])
    ids = list(jobs)
    results = tfjs_predict_many([{"model_dir": jobs[i][0], "inputs": jobs[i][1], "kind": "layers"} for i in ids])
    return dict(zip(ids, results))


# ---------------------------------------------------------------- TF.js reproduces TensorFlow

@pytest.mark.parametrize("vid", list(VARIANTS))
def test_tfjs_reproduces_tensorflow(vid, tfjs, converted, sources, dequantized_refs):
    got = tfjs[vid]
    if isinstance(got, TfjsError):
        pytest.fail(f"TF.js refused our {vid} model: {got}")
    base = converted[vid][1]
    float_ref = sources[base][3]
    ref = dequantized_refs.get(vid, float_ref)
    assert len(got) == len(ref)
    for g, r, f in zip(got, ref, float_ref):
        assert g.shape == r.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, r, **FLOAT_TOL)
        if os.environ.get("LAYERS_DEBUG"):
            print(f"\n{vid}: |tfjs-ref| {np.abs(g - r).max():.2e}  |tfjs-float| {np.abs(g - f).max():.2e} "
                  f"dequant_ref={vid in dequantized_refs} range {np.abs(r).max():.2f}")
        if vid in dequantized_refs:
            qtypes = set(VARIANTS[vid][1]["quantize"])
            assert np.abs(g - f).max() <= max(QUANT_TOL[q] for q in qtypes)


def test_quantization_and_shards_written_as_asked(converted, sources):
    from wgpu_runtime.format import load_artifacts

    art = load_artifacts(converted["k3_multi_keras_mixed"][0])
    q = {s["name"]: s.get("quantization", {}).get("dtype") for s in art.weight_specs}
    assert q == {n: ("uint8" if n.startswith("sub_d") else "float16") for n in q}, q
    assert set(q) == {"o1/kernel", "o1/bias", "skip/kernel", "skip/bias",
                      "sub_d1/kernel", "sub_d1/bias", "sub_d2/kernel", "sub_d2/bias"}
    folder = converted["k2_rnn_shard64_split"][0]
    manifest = json.loads((folder / "model.json").read_text())["weightsManifest"]
    assert [sorted({w["name"].split("/")[0] for w in g["weights"]}) for g in manifest] == \
        [["bigru"], ["emb"], ["logits"], ["lstm"], ["td"]]
    for group in manifest:
        sizes = [(folder / p).stat().st_size for p in group["paths"]]
        assert all(s == 64 for s in sizes[:-1]) and 0 < sizes[-1] <= 64
    folder = converted["k3_rnn_retfjs_float16"][0]
    for group in json.loads((folder / "model.json").read_text())["weightsManifest"]:
        assert all(w["quantization"]["dtype"] == "float16" for w in group["weights"])
        assert all((folder / p).stat().st_size <= 300 for p in group["paths"])


def test_keras3_topology_is_keras2_style(converted):
    topo = json.loads((converted["k3_multi_keras"][0] / "model.json").read_text())["modelTopology"]
    text = json.dumps(topo)
    for keras3_only in ('"batch_shape"', "__keras_tensor__", "DTypePolicy", '"module"', '"registered_name"'):
        assert keras3_only not in text
    layers = {l["name"]: l for l in topo["model_config"]["config"]["layers"]}
    assert layers["cat"]["inbound_nodes"] == [[["a", 0, 0, {}], ["b", 0, 0, {}]]]
    # the nested model's first call is its node 1 (node 0: its own construction), as in Keras 2
    assert layers["add"]["inbound_nodes"] == [[["sub", 1, 0, {}], ["skip", 0, 0, {}]]]
    assert layers["a"]["config"]["batch_input_shape"] == [None, 10]


def test_official_keras3_and_separable_outputs_are_refused_by_tfjs(tfjs):
    """Negative controls: what the official converter writes for these, TF.js does not load."""
    assert isinstance(tfjs["official:k3_multi_h5"], TfjsError)
    assert "batchInputShape" in str(tfjs["official:k3_multi_h5"])
    assert isinstance(tfjs["official:k2_cnn"], TfjsError)
    assert "invalid for SeparableConv2D" in str(tfjs["official:k2_cnn"])


# ---------------------------------------------------------------- against the official converter

def _diff(a, b, path=""):
    """[(path, official value, our value)]; a regularizer is compared whole."""
    if isinstance(a, dict) and isinstance(b, dict) and not path.endswith("_regularizer"):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


def _justified(path, theirs, ours, layer_class):
    """The differences we make on purpose (module docstring of convert/layers/topology.py)."""
    field = path.rsplit(".", 1)[-1]
    if layer_class == "SeparableConv2D" and field in ("kernel_initializer", "kernel_regularizer",
                                                      "kernel_constraint") and ours == "<absent>":
        return True   # TF.js throws "Fields kernelInitializer, ... are invalid for SeparableConv2D"
    if field.endswith("_regularizer") and isinstance(theirs, dict) and theirs.get("class_name") in ("L1", "L2"):
        key = theirs["class_name"].lower()   # TF.js registers only L1L2
        return ours == {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.0, key: theirs["config"][key]}}
    return False


@pytest.mark.parametrize("vid", ["k2_cnn", "k2_rnn", "k2_multi", "k2_cnn_uint8", "k2_rnn_shard64_split"])
def test_tf_keras_h5_matches_official_converter(vid, converted, official):
    ours_dir, theirs_dir = converted[vid][0], official[vid]
    bins = sorted(p.name for p in theirs_dir.glob("*.bin"))
    assert sorted(p.name for p in ours_dir.glob("*.bin")) == bins
    for name in bins:
        assert (ours_dir / name).read_bytes() == (theirs_dir / name).read_bytes(), name
    ours = json.loads((ours_dir / "model.json").read_text())
    theirs = json.loads((theirs_dir / "model.json").read_text())
    assert ours["weightsManifest"] == theirs["weightsManifest"]
    assert (ours["format"], ours["generatedBy"]) == (theirs["format"], theirs["generatedBy"])
    assert list(ours) == list(theirs)
    layers = theirs["modelTopology"]["model_config"]["config"]["layers"]
    diffs = _diff(theirs["modelTopology"], ours["modelTopology"])
    unjustified = []
    for path, a, b in diffs:
        idx = int(path.split("layers[")[1].split("]")[0]) if "layers[" in path else None
        cls = layers[idx]["class_name"] if idx is not None else None
        if not _justified(path, a, b, cls):
            unjustified.append((path, a, b))
    assert not unjustified
    expected = {"k2_cnn": 4}.get(vid.split("_uint8")[0], 0)   # sep: 3 fields dropped; proj: L2 -> L1L2
    assert len(diffs) == expected, diffs


# ---------------------------------------------------------------- tfjs_layers_model -> Keras

@pytest.mark.parametrize("vid", ["k2_cnn", "k3_multi_keras"])
def test_tfjs_to_keras_h5_predicts_the_same(vid, converted, sources, tmp_path):
    import tf_keras

    folder, base = converted[vid]
    h5 = convert_layers(folder / "model.json", tmp_path / "model.h5", "tfjs_layers_model", "keras", {})
    model = tf_keras.models.load_model(str(h5), compile=False)
    for got, ref in zip(_predict(model, sources[base][2]), sources[base][3]):
        np.testing.assert_allclose(got, ref, **FLOAT_TOL)   # same weights; tf_keras vs Keras 3 kernels


# ---------------------------------------------------------------- bad inputs, nothing half-written

def test_bad_inputs_raise_one_clear_error(sources, tmp_path):
    out = tmp_path / "out"
    cases = []
    with pytest.raises(ConversionError, match="no such file"):
        convert_layers(tmp_path / "missing.h5", out, "keras", "tfjs_layers_model", {})
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ConversionError, match="not a readable HDF5 file"):
        convert_layers(corrupt, out, "keras", "tfjs_layers_model", {})
    with pytest.raises(ConversionError, match="unsupported conversion"):
        convert_layers(sources["k2_cnn_h5"][0], out, "keras", "keras", {})
    with pytest.raises(ConversionError, match="not a .keras file"):
        convert_layers(corrupt, out, "keras_keras", "tfjs_layers_model", {})
    with pytest.raises(ConversionError, match="not a TF.js layers model|model file not found"):
        convert_layers(tmp_path, out, "tfjs_layers_model", "keras", {})
    assert not out.exists(), cases


def test_gru_reset_after_is_refused_and_nothing_is_written(tmp_path):
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input((3, 2)), tf_keras.layers.GRU(4, name="g")])   # reset_after=True
    model.save(str(tmp_path / "gru.h5"))
    with pytest.raises(ConversionError, match="reset_after=True"):
        convert_layers(tmp_path / "gru.h5", tmp_path / "out", "keras", "tfjs_layers_model", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gru.h5"]


def test_existing_output_needs_overwrite_and_input_is_untouched(sources, tmp_path):
    src = sources["k3_rnn_keras"][0]
    before = sorted(p.name for p in src.parent.iterdir()), src.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConversionError, match="--overwrite"):
        convert_layers(src, out, "keras_keras", "tfjs_layers_model", {})
    assert (out / "keep.txt").exists()
    convert_layers(src, out, "keras_keras", "tfjs_layers_model", {"overwrite": True})
    assert not (out / "keep.txt").exists() and (out / "model.json").exists()
    # the official converter unzips .keras files next to the input; we write nothing there
    assert (sorted(p.name for p in src.parent.iterdir()), src.read_bytes()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary left behind


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not an hdf5 file")
    proc = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "convert", "--input_format=keras",
                           str(corrupt), str(tmp_path / "out")], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "corrupt.h5" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- causal Conv1D (convert/layers/causal_conv.py)
#
# TF.js loads a Conv1D with padding="causal" and fails at predict; we write Reshape +
# ZeroPadding2D + Reshape (TF.js has no ZeroPadding1D) + a valid Conv1D, weights unchanged.
# Sources: the same seeded architectures and weights in tf_keras and Keras 3, so the official
# converter's tf_keras output is the unrewritten reference (manifest and bytes) for both, and
# the negative control (TF.js refuses it).

CAUSAL_SOURCES = {"k2_seq": ("k2", "seq", ".h5"), "k2_fun": ("k2", "fun", ".h5"),
                  "k3_seq": ("k3", "seq", ".h5"), "k3_fun": ("k3", "fun", ".h5"),
                  "k3_fun_keras": ("k3", "fun", ".keras")}


def _causal_models(K):
    L = K.layers
    seq = K.Sequential([K.Input((None, 3), name="steps"),                  # any sequence length
                        L.Conv1D(4, 3, dilation_rate=2, padding="causal", activation="tanh", name="c1"),
                        L.Conv1D(5, 2, padding="causal", use_bias=False, name="c2")], name="causal_seq")
    x = K.Input((12, 3), name="steps")
    a = L.Conv1D(4, 3, dilation_rate=2, padding="causal", use_bias=False, name="a")(x)
    a = L.Activation("relu", name="shared_causal_pad")(a)            # takes the name the rewrite would pick
    shared = L.Conv1D(4, 2, padding="causal", name="shared")             # called twice: two inbound nodes
    s1 = shared(a)
    s2 = shared(s1)
    y = L.Add(name="sum")([s1, s2])
    z = L.Conv1D(3, 2, strides=2, padding="causal", name="strided")(x)  # causal padding with a stride
    fun = K.Model(x, [y, z], name="causal_fun")
    return {"seq": seq, "fun": fun}


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    """{id: (our output dir, inputs, Keras' outputs)}, plus "official:k2_seq|k2_fun": the official
    converter's outputs of the tf_keras sources (causal padding kept as is), and "repaired:...":
    those converted again by us (tfjs_layers_model -> tfjs_layers_model)."""
    import keras
    import tf_keras
    from tensorflowjs.converters.converter import (
        dispatch_keras_h5_to_tfjs_layers_model_conversion as official_convert,
    )

    root = tmp_path_factory.mktemp("causal")
    built = {tag: _causal_models(K) for tag, K in (("k2", tf_keras), ("k3", keras))}
    x = np.random.default_rng(7).uniform(-1, 1, (2, 12, 3)).astype(np.float32)
    for kind in ("seq", "fun"):
        _randomize(built["k2"][kind], 40)
        built["k3"][kind].set_weights(built["k2"][kind].get_weights())   # same values, same order
    out = {}
    for sid, (tag, kind, ext) in CAUSAL_SOURCES.items():
        model = built[tag][kind]
        path = root / f"{sid}{ext}"
        model.save(str(path))
        dst = convert_layers(path, root / sid, "keras_keras" if ext == ".keras" else "keras", "tfjs_layers_model", {})
        out[sid] = (dst.parent, x, _predict(model, [x]))
    for kind in ("seq", "fun"):
        official_convert(str(root / f"k2_{kind}.h5"), str(root / f"official_{kind}"))
        out[f"official:k2_{kind}"] = (root / f"official_{kind}", x, out[f"k2_{kind}"][2])
        # tfjs_layers_model -> tfjs_layers_model repairs a model the official converter wrote
        dst = convert_layers(root / f"official_{kind}" / "model.json", root / f"repaired_{kind}",
                             "tfjs_layers_model", "tfjs_layers_model", {})
        out[f"repaired:k2_{kind}"] = (dst.parent, x, out[f"k2_{kind}"][2])
    return out


@pytest.fixture(scope="module")
def causal_tfjs(causal):
    require_tfjs()
    ids = list(causal)
    results = tfjs_predict_many([{"model_dir": causal[i][0], "inputs": [causal[i][1]], "kind": "layers"} for i in ids])
    return dict(zip(ids, results))


@pytest.mark.parametrize("sid", [*CAUSAL_SOURCES, "repaired:k2_seq", "repaired:k2_fun"])
def test_causal_conv1d_runs_in_tfjs(sid, causal, causal_tfjs):
    got, ref = causal_tfjs[sid], causal[sid][2]
    if isinstance(got, TfjsError):
        pytest.fail(f"TF.js refused our {sid} model: {got}")
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, **FLOAT_TOL)


def test_official_causal_conv1d_fails_in_tfjs(causal_tfjs):
    """Negative controls, the unrewritten configs: the Sequential loads in TF.js and fails at
    predict; the functional model does not even load (TF.js's shape inference takes causal
    outputs to be as short as valid ones, so the Add of two chained calls gets 7 and 6 steps)."""
    seq, fun = causal_tfjs["official:k2_seq"], causal_tfjs["official:k2_fun"]
    assert isinstance(seq, TfjsError) and "CAUSAL padding mode" in str(seq)
    assert isinstance(fun, TfjsError) and "could not be broadcast together with shapes [7,4] [6,4]" in str(fun)


@pytest.mark.parametrize("sid", list(CAUSAL_SOURCES))
def test_causal_conv1d_weights_are_the_unrewritten_ones(sid, causal):
    """Manifest (names, shapes, dtypes, order) and shard bytes equal the official converter's
    output of the tf_keras model with the same weights."""
    ours, theirs = causal[sid][0], causal[f"official:k2_{CAUSAL_SOURCES[sid][1]}"][0]
    ours_json, theirs_json = (json.loads((d / "model.json").read_text()) for d in (ours, theirs))
    assert ours_json["weightsManifest"] == theirs_json["weightsManifest"]
    bins = sorted(p.name for p in theirs.glob("*.bin"))
    assert sorted(p.name for p in ours.glob("*.bin")) == bins
    for name in bins:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


def _padding_chain(name, left, channels, pad_name=None):
    """(class, name, fields) of the layers written before causal Conv1D ``name``."""
    return [("Reshape", f"{name}_causal_expand", {"target_shape": [-1, 1, channels]}),
            ("ZeroPadding2D", pad_name or f"{name}_causal_pad", {"padding": [[left, 0], [0, 0]]}),
            ("Reshape", f"{name}_causal_squeeze", {"target_shape": [-1, channels]})]


def _check_chain(by_name, chain):
    for cls, name, fields in chain:
        layer = by_name[name]
        assert layer["class_name"] == cls
        assert {k: layer["config"][k] for k in fields} == fields, name


@pytest.mark.parametrize("sid", ["k2_seq", "k2_fun", "k3_seq", "k3_fun"])
def test_causal_conv1d_topology(sid, causal):
    cfg = json.loads((causal[sid][0] / "model.json").read_text())["modelTopology"]["model_config"]
    layers = cfg["config"]["layers"]
    names = [l["config"]["name"] for l in layers]
    by_name = dict(zip(names, layers))
    assert '"padding": "causal"' not in json.dumps(cfg)
    if sid.endswith("seq"):
        c1, c2 = _padding_chain("c1", 4, 3), _padding_chain("c2", 1, 4)    # left = dilation x (kernel - 1)
        assert names[1:] == [n for _, n, _ in c1] + ["c1"] + [n for _, n, _ in c2] + ["c2"]
        _check_chain(by_name, c1 + c2)
        assert by_name["c1_causal_expand"]["config"].get("batch_input_shape", [None, None, 3]) == [None, None, 3]
        assert "batch_input_shape" not in by_name["c1"]["config"]          # moved to the first new layer
        assert by_name["c1"]["config"]["padding"] == by_name["c2"]["config"]["padding"] == "valid"
        return
    a = _padding_chain("a", 4, 3)
    shared = _padding_chain("shared", 1, 4, pad_name="shared_causal_pad_1")   # the name was taken
    strided = _padding_chain("strided", 1, 3)
    _check_chain(by_name, a + shared + strided)
    assert names[names.index("a") - 3:names.index("a")] == [n for _, n, _ in a]
    assert by_name["a_causal_expand"]["inbound_nodes"] == [[["steps", 0, 0, {}]]]
    assert by_name["a_causal_pad"]["inbound_nodes"] == [[["a_causal_expand", 0, 0, {}]]]
    assert by_name["a"]["inbound_nodes"] == [[["a_causal_squeeze", 0, 0, {}]]]
    assert by_name["shared_causal_expand"]["inbound_nodes"] == [[["shared_causal_pad", 0, 0, {}]],
                                                                [["shared", 0, 0, {}]]]
    assert by_name["shared_causal_pad_1"]["inbound_nodes"] == [[["shared_causal_expand", 0, 0, {}]],
                                                               [["shared_causal_expand", 1, 0, {}]]]
    assert by_name["shared"]["inbound_nodes"] == [[["shared_causal_squeeze", 0, 0, {}]],
                                                  [["shared_causal_squeeze", 1, 0, {}]]]
    assert by_name["sum"]["inbound_nodes"] == [[["shared", 0, 0, {}], ["shared", 1, 0, {}]]]
    assert all(by_name[c]["config"]["padding"] == "valid" for c in ("a", "shared", "strided"))


@pytest.mark.parametrize("sid", ["k2_seq", "k2_fun", "k3_seq", "k3_fun_keras", "official:k2_seq", "official:k2_fun"])
def test_runtime_runs_causal_conv1d(sid, causal, device):
    """Our layers loader runs the rewritten models and the official (causal) configs alike."""
    import wgpu_runtime as wr

    folder, x, ref = causal[sid]
    model = wr.load_layers_model(folder, adapter=device.backend)
    got = model.predict(x)
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, **FLOAT_TOL)


def test_causal_conv1d_input_shape_moves_to_the_first_padding_layer(tmp_path):
    """A tf_keras Sequential built with input_shape= writes batch_input_shape on its first layer."""
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.Conv1D(2, 3, padding="causal", input_shape=(None, 3), name="c")])
    _randomize(model, 11)
    model.save(str(tmp_path / "m.h5"))
    folder = convert_layers(tmp_path / "m.h5", tmp_path / "out", "keras", "tfjs_layers_model", {}).parent
    layers = json.loads((folder / "model.json").read_text())["modelTopology"]["model_config"]["config"]["layers"]
    by_name = {l["config"]["name"]: l["config"] for l in layers}
    assert by_name["c_causal_expand"]["batch_input_shape"] == [None, None, 3]
    assert "batch_input_shape" not in by_name["c"]
    x = np.random.default_rng(11).uniform(-1, 1, (2, 7, 3)).astype(np.float32)
    from tfjs_harness import tfjs_predict

    (got,) = tfjs_predict(folder, [x], kind="layers")
    np.testing.assert_allclose(got, _predict(model, [x])[0], **FLOAT_TOL)


def test_causal_conv1d_that_cannot_be_split_is_refused(tmp_path):
    import tf_keras

    L = tf_keras.layers
    wrapped = tf_keras.Sequential([tf_keras.Input((4, 6, 2)),
                                   L.TimeDistributed(L.Conv1D(3, 2, padding="causal"), name="td")])
    wrapped.save(str(tmp_path / "wrapped.h5"))
    with pytest.raises(ConversionError, match="causal Conv1D .* inside a wrapper.*--output_format=tfjs_graph_model"):
        convert_layers(tmp_path / "wrapped.h5", tmp_path / "out", "keras", "tfjs_layers_model", {})
    first = tf_keras.Sequential([tf_keras.Input((2, 6)),
                                 L.Conv1D(3, 2, padding="causal", data_format="channels_first", name="cf")])
    first.save(str(tmp_path / "first.h5"))
    with pytest.raises(ConversionError, match="'cf' with data_format='channels_first'"):
        convert_layers(tmp_path / "first.h5", tmp_path / "out", "keras", "tfjs_layers_model", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.h5", "wrapped.h5"]


# ---------------------------------------------------------------- GRU reset_after=True: the graph-model hint

def test_gru_reset_after_message_names_the_graph_model_output(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3, 2)), keras.layers.GRU(4, name="g")])   # Keras 3, reset_after=True
    model.save(str(tmp_path / "gru.keras"))
    with pytest.raises(ConversionError, match=r"reset_after=True.*--output_format=tfjs_graph_model"):
        convert_layers(tmp_path / "gru.keras", tmp_path / "out", "keras_keras", "tfjs_layers_model", {})
    assert not (tmp_path / "out").exists()


def test_gru_reset_after_hint_works_and_is_in_the_help(tmp_path):
    """The hint is true (the graph model of a reset_after=True GRU runs in TF.js and matches) and
    `convert --help` gives it."""
    import tf_keras
    from wgpu_runtime.convert.graph import convert_graph
    from wgpu_runtime.convert.options import ConvertOptions

    model = tf_keras.Sequential([tf_keras.Input((3, 2), name="seq"), tf_keras.layers.GRU(4, name="g")])
    _randomize(model, 9)
    model.save(str(tmp_path / "gru.h5"))
    x = np.random.default_rng(9).uniform(-1, 1, (2, 3, 2)).astype(np.float32)
    out = convert_graph(tmp_path / "gru.h5", tmp_path / "graph", "keras", ConvertOptions()).parent
    from tfjs_harness import tfjs_predict

    (got,) = tfjs_predict(out, [x], kind="graph")
    np.testing.assert_allclose(got, _predict(model, [x])[0], **FLOAT_TOL)
    proc = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "convert", "--help"], capture_output=True,
                          text=True, timeout=120, check=True, env={**os.environ, "COLUMNS": "200"})
    help_text = " ".join(proc.stdout.split())
    assert "reset_after=True" in help_text and "--output_format=tfjs_graph_model" in help_text, proc.stdout
