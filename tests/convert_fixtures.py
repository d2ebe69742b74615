"""Small seeded source models for the graph-model converter tests, built in THIS process with
TensorFlow (tf_keras, Keras 3, tf.Module, TF1 graphs), with TensorFlow's outputs as references.

``build_sources(work)`` -> {name: Source}. Also: ``tf_run_graph_model`` (TensorFlow running a
converted model.json with its weights decoded as TF.js decodes them) and ``reference_run``
(the runtime's numpy op references evaluating a GraphDef: an oracle independent of both TF
and the GPU for graphs with TF.js-only ops such as Prelu).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


@dataclass
class Source:
    path: Path
    input_format: str
    feeds: dict                      # signature key -> array
    ref: dict                        # output key -> TensorFlow's array
    options: dict = field(default_factory=dict)   # ConvertOptions fields the case needs
    official: str | None = None      # how the official converter takes it (None: it cannot)


def _rng(seed):
    return np.random.default_rng(seed)


def _randomize(layers, seed):
    """Non-trivial weights (zero biases would be folded away; a fresh batch norm is identity)."""
    rng = _rng(seed)
    for layer in layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if type(layer).__name__ == "BatchNormalization":   # gamma, beta, mean, variance > 0
            n = ws[0].shape
            new = [rng.uniform(0.6, 1.4, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n), rng.uniform(0.6, 1.4, n)]
        else:
            new = [rng.normal(0, 0.3, w.shape) for w in ws]
        layer.set_weights([np.asarray(v, np.float32) for v in new])


# ---------------------------------------------------------------------------------------------
# Keras models

def tf_keras_cnn(work: Path) -> Source:
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    L = tf_keras.layers
    x_in = L.Input((12, 12, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv_a")(x_in)
    x = L.BatchNormalization(name="bn_a")(x)
    x = L.ReLU(6.0, name="relu6")(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.BatchNormalization(name="bn_dw")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, activation="elu", name="dw_elu")(x)   # [NoOp, Elu]
    y = L.Conv2D(8, 1, name="conv_b")(x)
    x = L.Add(name="add")([x, y])
    x = L.PReLU(shared_axes=[1, 2], name="prelu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(16, activation="tanh", name="dense_tanh")(x)
    out = L.Dense(5, activation="softmax", name="probs")(x)
    model = tf_keras.Model(x_in, out)
    _randomize(model.layers, 1)
    path = work / "tf_keras_cnn.h5"
    model.save(path)
    feeds = {"image": _rng(2).uniform(-1, 1, (2, 12, 12, 3)).astype(np.float32)}
    return Source(path, "keras", feeds, {"probs": model(feeds["image"]).numpy()}, official="keras")


def tf_keras_layer_norm(work: Path) -> Source:
    """tf_keras LayerNormalization (FusedBatchNormV3 with is_training=true) and two inputs /
    two outputs."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    L = tf_keras.layers
    a, b = L.Input((6, 10), name="seq"), L.Input((4,), name="extra")
    x = L.Dense(12, name="proj")(a)
    x = L.LayerNormalization(name="ln_last")(x)
    x = L.Dense(4, name="dense")(x)
    y = L.LayerNormalization(axis=[1, 2], name="ln_two_axes")(x)
    z = L.Dense(3, name="side")(L.Concatenate(name="cat")([L.Flatten(name="flat")(y), b]))
    model = tf_keras.Model([a, b], [y, z])
    _randomize(model.layers, 3)
    path = work / "tf_keras_layer_norm.h5"
    model.save(path)
    rng = _rng(4)
    feeds = {"seq": rng.normal(size=(2, 6, 10)).astype(np.float32), "extra": rng.normal(size=(2, 4)).astype(np.float32)}
    ys = model([feeds["seq"], feeds["extra"]])
    return Source(path, "keras", feeds, {"ln_two_axes": ys[0].numpy(), "side": ys[1].numpy()}, official="keras")


def tf_keras_rnn(work: Path) -> Source:
    """tf_keras LSTM feeding a bidirectional GRU (loops whose length is known only once the
    loop before them is unrolled)."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    L = tf_keras.layers
    model = tf_keras.Sequential([L.Input((6, 3), name="frames"), L.LSTM(4, return_sequences=True, name="lstm"),
                                 L.Bidirectional(L.GRU(3, name="gru"), name="bigru"), L.Dense(2, name="out")])
    _randomize(model.layers, 14)
    path = work / "tf_keras_rnn.h5"
    model.save(path)
    feeds = {"frames": _rng(15).normal(size=(2, 6, 3)).astype(np.float32)}
    return Source(path, "keras", feeds, {"out": model(feeds["frames"]).numpy()}, official="keras")


def keras3_cnn(work: Path) -> Source:
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    x_in = keras.Input((10, 10, 3), name="pixels")
    x = L.Conv2D(6, 3, activation="relu", name="conv")(x_in)
    x = L.BatchNormalization(name="bn")(x)
    x = L.LayerNormalization(name="ln")(x)
    x = L.DepthwiseConv2D(3, name="dw")(x)
    x = L.Flatten(name="flat")(x)
    out = L.Dense(4, activation="softmax", name="scores")(x)
    model = keras.Model(x_in, out)
    _randomize(model.layers, 5)
    path = work / "keras3_cnn.h5"
    model.save(path)
    model.save(work / "keras3_cnn.keras")      # the same model as a Keras v3 .keras file
    feeds = {"pixels": _rng(6).uniform(-1, 1, (2, 10, 10, 3)).astype(np.float32)}
    return Source(path, "keras", feeds, {"scores": np.asarray(model(feeds["pixels"]))})


def _keras3_rnn():
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    x_in = keras.Input((5, 3), name="steps")
    x = L.LSTM(4, return_sequences=True, name="lstm")(x_in)
    x = L.GRU(3, name="gru")(x)
    model = keras.Model(x_in, L.Dense(2, name="head")(x))
    _randomize(model.layers, 7)
    return model


def keras3_rnn_h5(work: Path) -> Source:
    model = _keras3_rnn()
    path = work / "keras3_rnn.h5"
    model.save(path)
    feeds = {"steps": _rng(8).normal(size=(2, 5, 3)).astype(np.float32)}
    return Source(path, "keras", feeds, {"head": np.asarray(model(feeds["steps"]))})


def keras3_rnn_saved_model(work: Path) -> Source:
    """A Keras 3 recurrent model exported as a SavedModel (model.export): a tf.while_loop."""
    model = _keras3_rnn()
    path = work / "keras3_rnn_saved_model"
    model.export(str(path), verbose=False)
    feeds = {"steps": _rng(8).normal(size=(2, 5, 3)).astype(np.float32)}
    return Source(path, "tf_saved_model", feeds, {"output_0": np.asarray(model(feeds["steps"]))},
                  official="tf_saved_model")


# ---------------------------------------------------------------------------------------------
# TF graphs

def _module_function():
    import tensorflow as tf

    rng = _rng(9)
    w_conv = tf.constant(rng.normal(0, 0.3, (3, 3, 2, 4)).astype(np.float32))
    b_conv = tf.constant(rng.normal(0, 0.3, (4,)).astype(np.float32))
    w_fc = tf.Variable(rng.normal(0, 0.3, (4, 3)).astype(np.float32))
    order = tf.constant([2, 0, 1], tf.int64)              # an int64 weight (stored as int32)

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.w_fc = w_fc

        @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 2], tf.float32, name="image"),
                                      tf.TensorSpec([None, 1], tf.float32, name="gain")])
        def serve(self, image, gain):
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(image, w_conv, 1, "SAME"), b_conv))
            pooled = tf.reduce_mean(x, axis=[1, 2])
            logits = tf.matmul(pooled, self.w_fc) * gain
            return {"logits": tf.gather(logits, order, axis=1), "features": pooled}

    return M()


def saved_model(work: Path) -> Source:
    import tensorflow as tf

    m = _module_function()
    path = work / "saved_model"
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})
    rng = _rng(10)
    feeds = {"image": rng.normal(size=(2, 6, 6, 2)).astype(np.float32), "gain": rng.uniform(0.5, 2, (2, 1)).astype(np.float32)}
    ref = {k: v.numpy() for k, v in m.serve(**feeds).items()}
    return Source(path, "tf_saved_model", feeds, ref, official="tf_saved_model")


def hub_tf2(work: Path) -> Source:
    """A TF2 hub-style module: a SavedModel whose only signature is ``default``."""
    import tensorflow as tf

    m = _module_function()
    path = work / "hub_tf2"
    tf.saved_model.save(m, str(path), signatures={"default": m.serve})
    rng = _rng(11)
    feeds = {"image": rng.normal(size=(1, 6, 6, 2)).astype(np.float32), "gain": np.ones((1, 1), np.float32)}
    ref = {k: v.numpy() for k, v in m.serve(**feeds).items()}
    return Source(path, "tf_hub", feeds, ref, official="tf_hub")


def hub_tf1(work: Path) -> Source:
    """A module in the TF1 hub format: a TF1 SavedModel (default graph variant: no tags, a
    ``default`` signature) beside ``tfhub_module.pb`` (a ModuleDef: format 3)."""
    import tensorflow as tf

    rng = _rng(12)
    w = rng.normal(0, 0.5, (4, 3)).astype(np.float32)
    b = rng.normal(0, 0.5, (3,)).astype(np.float32)
    path = work / "hub_tf1"
    shutil.rmtree(path, ignore_errors=True)
    with tf.Graph().as_default() as g, tf.compat.v1.Session(graph=g) as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        y = tf.nn.relu6(tf.matmul(x, tf.compat.v1.get_variable("w", initializer=w))
                        + tf.compat.v1.get_variable("b", initializer=b), name="y")
        sess.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, [], signature_def_map={
            "default": tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"default": y})})
        builder.save()
    (path / "tfhub_module.pb").write_bytes(b"\x08\x03")
    feeds = {"x": rng.normal(size=(3, 4)).astype(np.float32) * 3}
    return Source(path, "tf_hub", feeds, {"default": np.clip(feeds["x"] @ w + b, 0, 6)})


def frozen_graph(work: Path) -> Source:
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    rng = _rng(13)
    w = tf.Variable(rng.normal(0, 0.5, (5, 4)).astype(np.float32))
    b = rng.normal(0, 0.5, (4,)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32, name="inputs")])
    def f(x):
        return tf.identity(tf.nn.elu(tf.matmul(x, w) + b), name="scores")

    frozen = convert_to_constants.convert_variables_to_constants_v2(f.get_concrete_function())
    path = work / "frozen.pb"
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    feeds = {"inputs": rng.normal(size=(2, 5)).astype(np.float32)}
    return Source(path, "tf_frozen_model", feeds, {"scores": f(feeds["inputs"]).numpy()},
                  options={"output_node_names": ["scores"]}, official="tf_frozen_model")


def unsupported_ops(work: Path) -> Path:
    """A SavedModel using Svd (no TF.js / runtime kernel) twice."""
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([3, 3], tf.float32, name="m")])
        def serve(self, m):
            return {"s": tf.linalg.svd(m, compute_uv=False) + tf.linalg.svd(m * 2.0, compute_uv=False)}

    path = work / "svd_saved_model"
    tf.saved_model.save(M(), str(path), signatures={"serving_default": M().serve})
    return path


BUILDERS = {"tf_keras_cnn": tf_keras_cnn, "tf_keras_layer_norm": tf_keras_layer_norm, "tf_keras_rnn": tf_keras_rnn,
            "keras3_cnn": keras3_cnn,
            "keras3_rnn_h5": keras3_rnn_h5, "keras3_rnn_saved_model": keras3_rnn_saved_model,
            "saved_model": saved_model, "hub_tf2": hub_tf2, "hub_tf1": hub_tf1, "frozen_graph": frozen_graph}


def build_sources(work: Path) -> dict[str, Source]:
    work.mkdir(parents=True, exist_ok=True)
    sources = {name: build(work) for name, build in BUILDERS.items()}
    k3 = sources["keras3_cnn"]
    sources["keras3_keras_file"] = Source(work / "keras3_cnn.keras", "keras_keras", k3.feeds, k3.ref)
    return sources


def lookup_table_model(work: Path) -> Path:
    """A SavedModel with a StaticHashTable (a resource that freezing cannot make a constant)."""
    import tensorflow as tf

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant([1, 2, 3], tf.int64), tf.constant([10.0, 20.0, 30.0])), -1.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="ids")])
        def serve(self, ids):
            return {"values": self.table.lookup(ids)}

    m = M()
    path = work / "lookup_table_saved_model"
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})
    return path


def debug_ops_model(work: Path) -> Path:
    """A SavedModel with CheckNumerics and Assert (debug ops the converter strips by default)."""
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def serve(self, x):
            y = tf.debugging.check_numerics(x * 2.0, "x must be finite")
            with tf.control_dependencies([tf.debugging.assert_rank(x, 2)]):
                return {"y": tf.nn.relu(y) + 1.0}

    path = work / "debug_ops_saved_model"
    tf.saved_model.save(M(), str(path), signatures={"serving_default": M().serve})
    return path


def dynamic_loop_model(work: Path) -> tuple[Path, dict, dict]:
    """A SavedModel whose loop runs a data-dependent number of times (cannot be unrolled)."""
    import tensorflow as tf

    w = tf.Variable(np.float32(1.5))

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = w

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="limit")])
        def serve(self, limit):
            return {"value": tf.while_loop(lambda v: v < limit, lambda v: v * self.w, [tf.constant(1.0)])[0]}

    m = M()
    path = work / "dynamic_loop_saved_model"
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})
    feeds = {"limit": np.float32(10.0)}
    value = np.float32(1.0)
    while value < feeds["limit"]:
        value *= np.float32(1.5)
    return path, feeds, {"value": value}


# ---------------------------------------------------------------------------------------------
# Oracles for converted graphs

def model_graph_def(model_dir: Path):
    """model.json's GraphDef with every Const filled from the shards (decoded and dequantized
    as TF.js does, by wgpu_runtime.format), TF's dtypes restored (int64 is stored as int32)."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2

    from wgpu_runtime.format import load_artifacts

    art = load_artifacts(model_dir)
    gd = graph_pb2.GraphDef()
    json_format.ParseDict(art.model_topology, gd)
    for n in gd.node:
        if n.op == "Const":
            dtype = tf.dtypes.as_dtype(n.attr["dtype"].type)
            value = art.weights[n.name]
            if dtype != tf.string:
                value = np.asarray(value).astype(dtype.as_numpy_dtype)
            n.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return gd, art


def _plain_tf(graph_def):
    """TF.js-only ops (FusedDepthwiseConv2dNative, Prelu, fused ops with Prelu) as stock TF ops,
    written here independently of the converter's code."""
    from tensorflow.core.framework import graph_pb2, node_def_pb2

    out = graph_pb2.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)

    def add(name, op, inputs, t, **attrs):
        n = node_def_pb2.NodeDef(name=name, op=op, input=inputs)
        n.attr["T"].CopyFrom(t)
        for k, v in attrs.items():
            n.attr[k].CopyFrom(v)
        out.node.append(n)
        return name

    def prelu(name, x, alpha, t):
        r = add(name + "/relu", "Relu", [x], t)
        d = add(name + "/neg_part", "Sub", [x, r], t)
        s = add(name + "/scaled", "Mul", [alpha, d], t)
        return add(name, "AddV2", [r, s], t)

    base = {"_FusedConv2D": ("Conv2D", ("strides", "padding", "explicit_paddings", "data_format", "dilations")),
            "_FusedMatMul": ("MatMul", ("transpose_a", "transpose_b")),
            "FusedDepthwiseConv2dNative": ("DepthwiseConv2dNative", ("strides", "padding", "explicit_paddings",
                                                                     "data_format", "dilations"))}
    from tensorflow.core.framework import attr_value_pb2, types_pb2

    float_t = attr_value_pb2.AttrValue(type=types_pb2.DT_FLOAT)
    for n in graph_def.node:
        t = n.attr["T"] if "T" in n.attr else float_t     # Prelu has no T (TF.js's op)
        if n.op == "Prelu":
            prelu(n.name, n.input[0], n.input[1], t)
        elif n.op in base:
            op, keep = base[n.op]
            steps = [s.decode() for s in n.attr["fused_ops"].list.s]
            data = [r for r in n.input if not r.startswith("^")]
            args = data[2:]
            cur = add(n.name + "/base", op, data[:2], t, **{k: n.attr[k] for k in keep if k in n.attr})
            for i, step in enumerate(steps):
                name = n.name if i == len(steps) - 1 else f"{n.name}/{step}"
                if step == "BiasAdd":
                    cur = add(name, "BiasAdd", [cur, args.pop(0)], t)
                elif step == "NoOp":
                    cur = add(name, "Identity", [cur], t)
                elif step == "Prelu":
                    cur = prelu(name, cur, args.pop(0), t)
                elif step == "LeakyRelu":
                    cur = add(name, "LeakyRelu", [cur], t, alpha=attr_value_pb2.AttrValue(f=n.attr["leakyrelu_alpha"].f))
                else:
                    cur = add(name, step, [cur], t)
        else:
            out.node.append(n)
    return out


def tf_run_graph_model(model_dir: Path, feeds: dict) -> dict:
    """TensorFlow running a converted graph model (weights as TF.js decodes them); inputs and
    outputs by signature key."""
    import tensorflow as tf

    gd, art = model_graph_def(model_dir)
    gd = _plain_tf(gd)
    sig = art.signature
    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(gd, name="")
    keys = list(sig.outputs)
    with tf.compat.v1.Session(graph=g) as sess:
        values = sess.run([sig.outputs[k].name for k in keys],
                          feed_dict={sig.inputs[k].name: v for k, v in feeds.items()})
    return dict(zip(keys, values))


def reference_run(graph_def, feeds: dict, fetches: list[str]) -> list[np.ndarray]:
    """Evaluate a GraphDef with the op registry's numpy references (``feeds``: placeholder name
    -> array; ``fetches``: tensor names)."""
    from google.protobuf.json_format import MessageToDict
    from tensorflow.python.framework import tensor_util

    from wgpu_runtime.format.nodes import decode_node
    from wgpu_runtime.ops import registry

    protos = {n.name: n for n in graph_def.node}
    cache: dict[str, list] = {}

    def value(ref: str) -> np.ndarray:
        name, _, idx = ref.partition(":")
        return outputs(name)[int(idx or 0)]

    def outputs(name: str) -> list:
        if name not in cache:
            proto = protos[name]
            if proto.op == "Const":
                cache[name] = [tensor_util.MakeNdarray(proto.attr["value"].tensor)]
            elif proto.op == "Placeholder":
                cache[name] = [np.asarray(feeds[name])]
            else:
                node = decode_node(MessageToDict(proto), name)
                args = [value(r) for r in node.inputs if not r.startswith("^")]
                op = registry.get(node.op)
                if op is None:
                    raise KeyError(f"no reference for {node.op}")
                cache[name] = op.run_reference(node.attrs, args)
        return cache[name]

    return [value(f) for f in fetches]


def file_digests(path: Path) -> dict:
    """{relative path: bytes} of a file or every file under a folder (to prove it unchanged)."""
    path = Path(path)
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def load_model_json(folder: Path) -> dict:
    return json.loads((Path(folder) / "model.json").read_text())
