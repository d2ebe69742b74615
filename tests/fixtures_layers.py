#!/usr/bin/env python
"""Layers-model fixtures: seeded Keras models written by the official converter
(``tensorflowjs.converters.save_keras_model`` for tf_keras; ``--input_format=keras`` on an .h5
for Keras 3) and one model written by real TensorFlow.js itself, with the framework's own
outputs. Built in a subprocess (TensorFlow + tensorflowjs + node), cached in
``<repo>/.fixtures/layers/<name>`` (or ``$WGPU_RUNTIME_FIXTURES/layers``), rebuilt when this file
changes.

    layers_fixture(name) -> Path       folder with model.json, shards, io.npz (+ train.json)
    python tests/fixtures_layers.py --out DIR [name ...]

io.npz: ``in:<input name>`` inputs, ``out:<i>`` the framework's outputs (Keras ``predict`` /
TF.js ``predict``), ``w:<i>`` Keras' ``get_weights()`` in order.
Training fixtures (mlp, cnn, lstm) also hold ``x``, ``y`` (training data), ``x_test`` and
``pred_trained`` (Keras' predictions after fitting); train.json holds how Keras was compiled and
fitted (``shuffle=False``) and its ``history``.

Fixtures:
    mlp          tf_keras Sequential: Dense relu, BatchNormalization, Dense tanh, Dense softmax; Adam
    cnn          tf_keras Sequential: Conv2D, BatchNormalization (4-D), MaxPooling2D, Conv2D, Flatten, Dense; SGD
    lstm         tf_keras Sequential: Embedding, LSTM, Dense; RMSprop, mse
    zoo_conv     tf_keras functional, two inputs: every convolution / pooling / padding / cropping /
                 upsampling / merge / activation layer, BatchNormalization with moved statistics
    zoo_seq      tf_keras functional: Embedding, SimpleRNN, LSTM (go_backwards, return_state into
                 another LSTM's initial_state), GRU (reset_after true and false), Bidirectional,
                 TimeDistributed, MultiHeadAttention (causal), Dot, RepeatVector, Permute, Reshape
    multi_io     tf_keras functional: 2 inputs, 2 outputs, a shared Dense called twice, a nested
                 Sequential and a nested functional model
    old_model    multi_io's converter output rewritten the way pre-2.4 Keras and old converters wrote
                 it: class_name "Model" everywhere a model is named, and no "format" key
    keras3       Keras 3 functional (batch_shape, DTypePolicy dicts, __keras_tensor__ nodes): nested
                 Sequential, shared layer, GRU, LayerNormalization, MultiHeadAttention, gelu and
                 hard_sigmoid (Keras 3 formulas)
    keras3_seq   Keras 3 Sequential CNN
    tfjs_saved   written by TF.js 4.22 (tf.LayersModel.save): Conv2D, BatchNormalization,
                 Dense with hard_sigmoid, LSTM (TF.js default hard_sigmoid), GRU (reset_after false),
                 Bidirectional; outputs from TF.js
    pixel_shuffle  tf_keras model with a custom layer class "PixelShuffle" (depth to space)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    from tests.fixture_cache import COMPLETE, cache_root, ensure_built, is_complete, script_version
except ImportError:                       # tests/ itself is on sys.path (pytest, or run as a script)
    from fixture_cache import COMPLETE, cache_root, ensure_built, is_complete, script_version

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCRIPT = Path(__file__).resolve()
VERSION = script_version(SCRIPT)

NAMES = ["mlp", "cnn", "lstm", "zoo_conv", "zoo_seq", "multi_io", "old_model", "keras3", "keras3_seq",
         "tfjs_saved", "pixel_shuffle"]

# How the training fixtures were fitted by Keras (and must be fitted by us): identical initial
# weights (the converted model), data order (shuffle=False), batch size, validation split.
TRAINING = {
    "mlp": {"optimizer": ["Adam", {"learning_rate": 0.01}], "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"], "epochs": 3, "batch_size": 32, "validation_split": 0.1},
    "cnn": {"optimizer": ["SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}],
            "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], "epochs": 3, "batch_size": 32,
            "validation_split": 0.1},
    "lstm": {"optimizer": ["RMSprop", {"learning_rate": 0.01}], "loss": "mse", "metrics": ["mae"], "epochs": 3,
             "batch_size": 32, "validation_split": 0.1},
}


# ------------------------------------------------------------------------------ test side
def fixtures_root() -> Path:
    return cache_root("layers")


def _complete(folder: Path) -> bool:
    return is_complete(folder, VERSION)


def ensure(*names: str) -> dict[str, Path]:
    # this script needs tf_keras + node besides tensorflowjs: always the repo's venv when it has one
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
           "TFDF_DISABLE_WELCOME_MESSAGE": "1"}
    return ensure_built(fixtures_root(), names, SCRIPT, label="layers fixtures", prefer_running=False,
                        env=env)


def layers_fixture(name: str) -> Path:
    """The fixture's folder; a first call builds every missing fixture in one TensorFlow process
    (each process pays ~5 s of imports, and the tests use them all)."""
    if not _complete(fixtures_root() / name):
        ensure(*NAMES)
    return ensure(name)[name]


def load_npz(name: str) -> dict:
    import numpy as np

    with np.load(layers_fixture(name) / "io.npz") as data:
        return {k: data[k] for k in data.files}


def outputs(arrays: dict) -> list:
    return [arrays[f"out:{i}"] for i in range(sum(k.startswith("out:") for k in arrays))]


def inputs(arrays: dict) -> dict:
    return {k[3:]: v for k, v in arrays.items() if k.startswith("in:")}


def keras_weights(arrays: dict) -> list:
    return [arrays[f"w:{i}"] for i in range(sum(k.startswith("w:") for k in arrays))]


# ----------------------------------------------------------------------------- build side
def _np():
    import numpy as np

    return np


def _save_io(folder: Path, model, xs: dict, extra: dict | None = None):
    np = _np()
    outs = model.predict(list(xs.values()) if len(xs) > 1 else next(iter(xs.values())), verbose=0)  # model order
    outs = outs if isinstance(outs, list) else [outs]
    arrays = {f"in:{k}": v for k, v in xs.items()}
    arrays.update({f"out:{i}": np.asarray(o) for i, o in enumerate(outs)})
    arrays.update({f"w:{i}": w for i, w in enumerate(model.get_weights())})
    arrays.update(extra or {})
    np.savez(folder / "io.npz", **arrays)


def _moved_bn_stats(model, rng):
    """Give BatchNormalization layers non-trivial weights and moving statistics (a fresh layer
    has mean 0 / variance 1, which would not test inference mode)."""
    np = _np()
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            ws = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") if i != 2 else
                               rng.uniform(-0.5, 0.5, w.shape).astype("float32") for i, w in enumerate(ws)])
    return np


def _train(name, folder, model, x, y, x_test):
    import tf_keras as k

    spec = TRAINING[name]
    opt_name, opt_kw = spec["optimizer"]
    model.compile(getattr(k.optimizers, opt_name)(**opt_kw), spec["loss"], spec["metrics"])
    initial = model.predict(x_test, verbose=0)
    hist = model.fit(x, y, epochs=spec["epochs"], batch_size=spec["batch_size"],
                     validation_split=spec["validation_split"], shuffle=False, verbose=0)
    (folder / "train.json").write_text(json.dumps({**spec, "history": {k_: [float(v) for v in vs]
                                                                       for k_, vs in hist.history.items()}}))
    np = _np()
    np.savez(folder / "io.npz", x=x, y=y, x_test=x_test, pred_initial=initial,
             pred_trained=model.predict(x_test, verbose=0),
             **{f"in:{model.input_names[0]}": x_test, "out:0": initial})


def build_mlp(folder, tfjs):
    import tf_keras as k

    np = _np()
    k.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    model = k.Sequential([k.Input((20,), name="features"), k.layers.Dense(64, activation="relu"),
                          k.layers.BatchNormalization(), k.layers.Dense(32, activation="tanh"),
                          k.layers.Dense(5, activation="softmax")], name="mlp")
    tfjs.converters.save_keras_model(model, str(folder))
    x = rng.standard_normal((320, 20)).astype("float32")
    y = (np.argmax(x[:, :5] + 0.5 * rng.standard_normal((320, 5)), axis=1)).astype("int32")
    _train("mlp", folder, model, x, y, rng.standard_normal((16, 20)).astype("float32"))


def build_cnn(folder, tfjs):
    import tf_keras as k

    np = _np()
    k.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    model = k.Sequential([k.Input((12, 12, 1), name="image"), k.layers.Conv2D(8, 3, activation="relu"),
                          k.layers.BatchNormalization(), k.layers.MaxPooling2D(),
                          k.layers.Conv2D(8, 3, padding="same", activation="relu"), k.layers.Flatten(),
                          k.layers.Dense(4, activation="softmax")], name="cnn")
    tfjs.converters.save_keras_model(model, str(folder))
    x = rng.standard_normal((256, 12, 12, 1)).astype("float32")
    y = (x[:, :6, :6, 0].mean(axis=(1, 2)) > 0).astype("int32") + 2 * (x[:, 6:, 6:, 0].mean(axis=(1, 2)) > 0)
    _train("cnn", folder, model, x, y.astype("int32"), rng.standard_normal((8, 12, 12, 1)).astype("float32"))


def build_lstm(folder, tfjs):
    import tf_keras as k

    np = _np()
    k.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    model = k.Sequential([k.Input((15,), name="tokens"), k.layers.Embedding(40, 8), k.layers.LSTM(16),
                          k.layers.Dense(1)], name="lstm_model")
    tfjs.converters.save_keras_model(model, str(folder))
    x = rng.integers(0, 40, (256, 15)).astype("float32")
    y = ((x[:, :5].mean(axis=1) - 20) / 10).astype("float32")[:, None]
    _train("lstm", folder, model, x, y, rng.integers(0, 40, (8, 15)).astype("float32"))


def build_zoo_conv(folder, tfjs):
    import tf_keras as k

    L = k.layers
    np = _np()
    k.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    img = k.Input((16, 16, 3), name="image")
    seq = k.Input((20, 6), name="signal")
    q = L.Cropping2D(((1, 2), (0, 1)))(L.ZeroPadding2D(((1, 2), (0, 1)))(img))
    a = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", activation="relu", dilation_rate=2)(q))
    b = L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, activation="swish")(img)
    m = L.Concatenate()([L.Add()([a, b]), L.Multiply()([a, b]), L.Subtract()([a, b]), L.Average()([a, b]),
                         L.Maximum()([a, b]), L.Minimum()([a, b])])
    d = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="relu6")(m)             # 7x7x96
    d = L.Conv2D(16, 1, activation="selu")(d)
    e = L.Conv2DTranspose(6, 3, strides=2, padding="same", activation="elu")(d)                # 14x14
    e2 = L.Conv2DTranspose(4, 3, strides=2, padding="valid", output_padding=1)(d)               # 16x16
    f = L.UpSampling2D(2)(L.MaxPooling2D(2)(e))                                                 # 14
    g = L.UpSampling2D(2, interpolation="bilinear")(L.AveragePooling2D(3, strides=2, padding="same")(e))
    h = L.LayerNormalization()(L.Concatenate()([f, g, L.Cropping2D(1)(e2)]))
    h = L.SpatialDropout2D(0.3)(L.PReLU(shared_axes=[1, 2])(h))
    h = L.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5)(h)
    out_img = L.Dense(5, activation="softmax")(L.Dropout(0.5)(L.GlobalAveragePooling2D()(h)))
    out_max = L.Softmax()(L.GlobalMaxPooling2D()(L.LeakyReLU(0.2)(h)))
    s = L.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="tanh")(seq)
    s = L.Conv1D(8, 3, strides=2, padding="same", activation="sigmoid")(s)                       # 10
    s = L.UpSampling1D(2)(L.MaxPooling1D(2)(s))                                                  # 10
    s = L.Cropping1D((1, 2))(L.ZeroPadding1D((2, 1))(L.AveragePooling1D(2, strides=1, padding="same")(s)))
    s = L.SpatialDropout1D(0.2)(L.ELU(0.5)(L.Rescaling(0.5, offset=0.1)(s)))
    out_seq = L.Concatenate()([L.GlobalMaxPooling1D()(s), L.GlobalAveragePooling1D()(s),
                               L.Flatten()(L.Permute((2, 1))(s)),
                               L.Flatten()(L.Reshape((5, -1))(L.Conv1D(4, 2, groups=2, padding="same", activation="softplus")(s)))])
    out_seq = L.Activation("softsign")(L.Dense(6, activation="mish")(out_seq))
    model = k.Model([img, seq], [out_img, out_max, out_seq], name="zoo_conv")
    _moved_bn_stats(model, rng)
    tfjs.converters.save_keras_model(model, str(folder))
    _save_io(folder, model, {"image": rng.standard_normal((3, 16, 16, 3)).astype("float32"),
                             "signal": rng.standard_normal((3, 20, 6)).astype("float32")})


def build_zoo_seq(folder, tfjs):
    import tf_keras as k

    L = k.layers
    np = _np()
    k.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    tokens = k.Input((12,), name="tokens")
    seq = k.Input((10, 5), name="seq")
    emb = L.Embedding(30, 8)(tokens)                                                          # 12x8
    r = L.SimpleRNN(6, return_sequences=True)(emb)
    enc, h, c = L.LSTM(7, return_sequences=True, return_state=True, go_backwards=True)(r)
    dec = L.LSTM(7, return_sequences=True)(seq, initial_state=[h, c])                           # 10x7
    g1 = L.GRU(5)(dec)
    g2 = L.GRU(5, reset_after=False, return_sequences=True)(seq)
    bi = L.Bidirectional(L.LSTM(4, return_sequences=True))(g2)                                  # 10x8
    bi2 = L.Bidirectional(L.GRU(3), merge_mode="sum")(bi)
    td = L.TimeDistributed(L.Dense(3, activation="relu"))(bi)                                   # 10x3
    att = L.MultiHeadAttention(num_heads=2, key_dim=4)(td, bi, use_causal_mask=True)           # 10x3
    dot = L.Dot(axes=(1, 1), normalize=True)([att, td])                                          # 3x3
    dot2 = L.Dot(axes=2)([att, td])                                                              # 10x10
    rep = L.RepeatVector(4)(g1)                                                                  # 4x5
    flat = L.Concatenate()([L.Flatten()(dot), L.Flatten()(dot2), L.Flatten()(rep), bi2,
                            L.Flatten()(L.Permute((2, 1))(enc)), L.Reshape((-1,))(att)])
    out = L.Dense(4, activation="sigmoid")(flat)
    model = k.Model([tokens, seq], [out, att], name="zoo_seq")
    tfjs.converters.save_keras_model(model, str(folder))
    _save_io(folder, model, {"tokens": rng.integers(0, 30, (3, 12)).astype("float32"),
                             "seq": rng.standard_normal((3, 10, 5)).astype("float32")})


def _multi_io_model():
    import tf_keras as k

    L = k.layers
    k.utils.set_random_seed(6)
    a = k.Input((6,), name="a")
    b = k.Input((6,), name="b")
    shared = L.Dense(8, activation="relu", name="shared")
    inner_seq = k.Sequential([k.Input((8,)), L.Dense(4, activation="tanh"), L.BatchNormalization()], name="inner_seq")
    ii = k.Input((4,), name="inner_in")
    inner_fn = k.Model(ii, L.Dense(3, name="inner_dense")(ii), name="inner_fn")
    sa, sb = shared(a), shared(b)
    ya = inner_fn(inner_seq(sa))
    yb = L.Dense(2, activation="sigmoid", name="head_b")(L.Concatenate()([inner_seq(sb), sa]))
    return k.Model([a, b], [ya, yb], name="multi_io")


def build_multi_io(folder, tfjs):
    np = _np()
    rng = np.random.default_rng(6)
    model = _multi_io_model()
    _moved_bn_stats(model.get_layer("inner_seq"), rng)
    tfjs.converters.save_keras_model(model, str(folder))
    _save_io(folder, model, {"a": rng.standard_normal((4, 6)).astype("float32"),
                             "b": rng.standard_normal((4, 6)).astype("float32")})


def build_old_model(folder, tfjs):
    """multi_io as pre-2.4 Keras / old converters wrote it: "Model" class names, no "format"."""
    np = _np()
    build_multi_io(folder, tfjs)
    path = folder / "model.json"
    doc = json.loads(path.read_text())
    doc.pop("format", None)

    def rename(node):
        if isinstance(node, dict):
            if node.get("class_name") == "Functional":
                node["class_name"] = "Model"
            for v in node.values():
                rename(v)
        elif isinstance(node, list):
            for v in node:
                rename(v)
    rename(doc["modelTopology"])
    path.write_text(json.dumps(doc))
    assert np is not None


def _keras3_convert(model, folder, tfjs):
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "model.h5"
        model.save(str(h5))
        from tensorflowjs.converters import converter

        converter.convert(["--input_format=keras", str(h5), str(folder)])


def build_keras3(folder, tfjs):
    import keras

    L = keras.layers
    np = _np()
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x = keras.Input((8, 6), name="x")
    t = keras.Input((8,), name="t", dtype="int32")
    shared = L.Dense(6, activation="gelu", name="shared")
    inner = keras.Sequential([keras.Input((8, 6)), L.Conv1D(6, 3, padding="same", activation="relu"),
                              L.BatchNormalization()], name="inner")
    e = L.Embedding(20, 6)(t)
    h = L.LayerNormalization()(L.Add()([shared(x), shared(e)]))
    g = L.GRU(5, return_sequences=True)(inner(h))
    att = L.MultiHeadAttention(2, 3)(g, h)
    y = L.Activation("hard_sigmoid")(L.Dense(3)(L.GlobalAveragePooling1D()(att)))
    model = keras.Model([x, t], [y, L.Dropout(0.3)(g)], name="keras3_fn")
    _moved_bn_stats(model.get_layer("inner"), rng)
    _keras3_convert(model, folder, tfjs)
    _save_io(folder, model, {"x": rng.standard_normal((3, 8, 6)).astype("float32"),
                             "t": rng.integers(0, 20, (3, 8)).astype("int32")})


def build_keras3_seq(folder, tfjs):
    import keras

    L = keras.layers
    np = _np()
    keras.utils.set_random_seed(8)
    rng = np.random.default_rng(8)
    model = keras.Sequential([keras.Input((10, 10, 2)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(),
                              L.DepthwiseConv2D(3, padding="same"), L.Flatten(), L.Dense(3, activation="softmax")],
                             name="keras3_seq")
    _keras3_convert(model, folder, tfjs)
    _save_io(folder, model, {"input": rng.standard_normal((2, 10, 10, 2)).astype("float32")})


_TFJS_SCRIPT = r"""
const fs = require('fs'); const path = require('path');
const tf = require(path.join(process.argv[2], 'node_modules/@tensorflow/tfjs'));
const out = process.argv[3];
function saver(dir) { return { save: async (a) => {
  fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.from(a.weightData));
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({modelTopology: a.modelTopology,
    format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy,
    weightsManifest: [{paths: ['group1-shard1of1.bin'], weights: a.weightSpecs}]}));
  return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
}};}
(async () => {
  tf.util.seedrandom ? null : null;
  const img = tf.input({shape: [8, 8, 2], name: 'img'});
  const seq = tf.input({shape: [6, 3], name: 'seq'});
  let a = tf.layers.conv2d({filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({seed: 1})}).apply(img);
  a = tf.layers.batchNormalization({movingMeanInitializer: tf.initializers.randomUniform({minval: -0.5, maxval: 0.5, seed: 2}),
      movingVarianceInitializer: tf.initializers.randomUniform({minval: 0.5, maxval: 1.5, seed: 3})}).apply(a);
  a = tf.layers.maxPooling2d({poolSize: 2}).apply(a);
  a = tf.layers.flatten().apply(a);
  a = tf.layers.dense({units: 4, activation: 'hardSigmoid', kernelInitializer: tf.initializers.glorotUniform({seed: 4})}).apply(a);
  let s = tf.layers.lstm({units: 5, returnSequences: true, kernelInitializer: tf.initializers.glorotUniform({seed: 5}),
      recurrentInitializer: tf.initializers.glorotUniform({seed: 6})}).apply(seq);
  s = tf.layers.bidirectional({layer: tf.layers.gru({units: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 7}),
      recurrentInitializer: tf.initializers.glorotUniform({seed: 8}), biasInitializer: tf.initializers.randomUniform({seed: 9})}),
      mergeMode: 'concat'}).apply(s);
  const y = tf.layers.dense({units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: 10})})
      .apply(tf.layers.concatenate().apply([a, s]));
  const model = tf.model({inputs: [img, seq], outputs: y});
  await model.save(saver(out));
  const xi = tf.tensor(Array.from({length: 2 * 8 * 8 * 2}, (_, i) => Math.sin(i * 0.37)), [2, 8, 8, 2]);
  const xs = tf.tensor(Array.from({length: 2 * 6 * 3}, (_, i) => Math.cos(i * 0.51)), [2, 6, 3]);
  const p = model.predict([xi, xs]);
  fs.writeFileSync(path.join(out, 'tfjs_io.json'), JSON.stringify({img: Array.from(xi.dataSync()),
    seq: Array.from(xs.dataSync()), out: Array.from(p.dataSync()), out_shape: p.shape}));
})();
"""


def build_tfjs_saved(folder, tfjs):
    np = _np()
    tfjs_dir = HERE / "tfjs"
    if not (tfjs_dir / "node_modules" / "@tensorflow" / "tfjs").is_dir() or shutil.which("node") is None:
        raise RuntimeError("node and tests/tfjs/node_modules/@tensorflow/tfjs are needed (tools/setup.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "save.js"
        script.write_text(_TFJS_SCRIPT)
        subprocess.run(["node", str(script), str(tfjs_dir), str(folder)], check=True, capture_output=True)
    io = json.loads((folder / "tfjs_io.json").read_text())
    (folder / "tfjs_io.json").unlink()
    np.savez(folder / "io.npz", **{"in:img": np.array(io["img"], np.float32).reshape(2, 8, 8, 2),
                                   "in:seq": np.array(io["seq"], np.float32).reshape(2, 6, 3),
                                   "out:0": np.array(io["out"], np.float32).reshape(io["out_shape"])})


def pixel_shuffle_class():
    import tensorflow as tf
    import tf_keras as k

    @k.utils.register_keras_serializable(package="Custom", name="PixelShuffle")
    class PixelShuffle(k.layers.Layer):
        def __init__(self, block_size=2, **kw):
            super().__init__(**kw)
            self.block_size = block_size

        def call(self, x):
            return tf.nn.depth_to_space(x, self.block_size)

        def get_config(self):
            return {**super().get_config(), "block_size": self.block_size}
    return PixelShuffle


def build_pixel_shuffle(folder, tfjs):
    import tf_keras as k

    np = _np()
    k.utils.set_random_seed(9)
    rng = np.random.default_rng(9)
    PixelShuffle = pixel_shuffle_class()
    model = k.Sequential([k.Input((6, 6, 3), name="lowres"), k.layers.Conv2D(12, 3, padding="same"),
                          PixelShuffle(2, name="pixel_shuffle"), k.layers.Conv2D(1, 3, padding="same")],
                         name="upscaler")
    tfjs.converters.save_keras_model(model, str(folder))
    doc = json.loads((folder / "model.json").read_text())
    # the converter writes the registered name ("Custom>PixelShuffle"); a TF.js user registers
    # the plain class name, as the example does
    text = json.dumps(doc).replace('"Custom>PixelShuffle"', '"PixelShuffle"')
    (folder / "model.json").write_text(text)
    _save_io(folder, model, {"lowres": rng.standard_normal((2, 6, 6, 3)).astype("float32")})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflowjs as tfjs

    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    for name in args.names or NAMES:
        target = root / name
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            globals()[f"build_{name}"](tmp, tfjs)
            (tmp / COMPLETE).write_text(VERSION)
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp, target)
            print(f"built {name}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
