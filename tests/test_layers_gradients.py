"""Every layer's gradients against tf.GradientTape, on random data.

A tf_keras layer is built with random weights (BatchNormalization also with moved statistics);
our layer is made from its config (``get_config``, as a converted model.json carries it) and
given the same weights (Keras' ``get_weights`` order, which also checks that ours matches).
Both compute d sum(layer(x) * c) / d (inputs, trainable weights) for a random cotangent c, in
inference mode and, for BatchNormalization, in training mode.

Tolerance: |ours - tf| <= 1e-4 * max(1, max |tf|) per gradient. Both sides are float32 chains
of a few hundred operations summed in different orders (~1e-6 relative); recurrent layers
back-propagate through every step, still well inside 1e-4. Wrong wiring gives O(1) errors.
"""
import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
k = pytest.importorskip("tf_keras")

from wgpu_runtime.autograd import Var, backward  # noqa: E402
from wgpu_runtime.layers import EagerCtx  # noqa: E402
from wgpu_runtime.layers.activations import NAMES  # noqa: E402
from wgpu_runtime.layers.functional import make_layer  # noqa: E402

TOL = 1e-4
L = k.layers

# (id, layer factory, input shapes (a list: the layer takes a list), call style, training)
#   call style: "one" layer(x); "list" layer([x, y]); "qv" layer(q, v)
CASES = [
    ("dense", lambda: L.Dense(4, activation="tanh"), [(3, 5)], "one"),
    ("dense_rank3", lambda: L.Dense(4), [(2, 3, 5)], "one"),
    ("conv1d_causal", lambda: L.Conv1D(3, 3, padding="causal", dilation_rate=2, activation="relu"), [(2, 8, 4)], "one"),
    ("conv1d_stride", lambda: L.Conv1D(3, 2, strides=2, padding="same"), [(2, 7, 2)], "one"),
    ("conv2d", lambda: L.Conv2D(3, 3, strides=2, padding="same", activation="elu"), [(2, 7, 7, 2)], "one"),
    ("conv2d_dilated", lambda: L.Conv2D(2, 3, dilation_rate=2), [(2, 8, 8, 2)], "one"),
    ("conv2d_groups", lambda: L.Conv2D(4, 3, groups=2), [(2, 6, 6, 4)], "one"),
    ("conv2d_transpose", lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same"), [(2, 4, 4, 2)], "one"),
    ("conv2d_transpose_op", lambda: L.Conv2DTranspose(2, 3, strides=2, output_padding=1), [(2, 3, 3, 2)], "one"),
    ("depthwise", lambda: L.DepthwiseConv2D(3, strides=2, depth_multiplier=2), [(2, 7, 7, 3)], "one"),
    ("separable", lambda: L.SeparableConv2D(4, 3, padding="same", depth_multiplier=2), [(2, 6, 6, 3)], "one"),
    ("maxpool1d", lambda: L.MaxPooling1D(2), [(2, 8, 3)], "one"),
    ("maxpool2d", lambda: L.MaxPooling2D(3, strides=2, padding="same"), [(2, 7, 7, 2)], "one"),
    ("avgpool1d", lambda: L.AveragePooling1D(3, strides=2, padding="same"), [(2, 7, 3)], "one"),
    ("avgpool2d", lambda: L.AveragePooling2D(2), [(2, 6, 6, 2)], "one"),
    ("gap1d", lambda: L.GlobalAveragePooling1D(), [(2, 5, 3)], "one"),
    ("gap2d", lambda: L.GlobalAveragePooling2D(keepdims=True), [(2, 4, 4, 3)], "one"),
    ("gmp1d", lambda: L.GlobalMaxPooling1D(), [(2, 5, 3)], "one"),
    ("gmp2d", lambda: L.GlobalMaxPooling2D(), [(2, 4, 4, 3)], "one"),
    ("batchnorm", lambda: L.BatchNormalization(), [(4, 5)], "one"),
    ("batchnorm_4d", lambda: L.BatchNormalization(), [(2, 3, 3, 4)], "one"),
    ("batchnorm_axis1", lambda: L.BatchNormalization(axis=1, center=False), [(2, 3, 4, 4)], "one"),
    ("layernorm", lambda: L.LayerNormalization(), [(2, 3, 6)], "one"),
    ("layernorm_axes", lambda: L.LayerNormalization(axis=[1, 2]), [(2, 3, 4)], "one"),
    ("dropout", lambda: L.Dropout(0.5), [(3, 4)], "one"),
    ("spatial_dropout", lambda: L.SpatialDropout1D(0.5), [(2, 3, 4)], "one"),
    ("flatten", lambda: L.Flatten(), [(2, 3, 4)], "one"),
    ("reshape", lambda: L.Reshape((4, -1)), [(2, 3, 4)], "one"),
    ("permute", lambda: L.Permute((2, 1)), [(2, 3, 4)], "one"),
    ("repeat", lambda: L.RepeatVector(3), [(2, 4)], "one"),
    ("activation", lambda: L.Activation("selu"), [(3, 4)], "one"),
    ("relu_general", lambda: L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5), [(4, 5)], "one"),
    ("relu6", lambda: L.ReLU(max_value=6.0), [(4, 5)], "one"),
    ("leaky", lambda: L.LeakyReLU(0.2), [(4, 5)], "one"),
    ("prelu", lambda: L.PReLU(shared_axes=[1]), [(2, 3, 4)], "one"),
    ("elu", lambda: L.ELU(0.7), [(4, 5)], "one"),
    ("thresholded", lambda: L.ThresholdedReLU(0.3), [(4, 5)], "one"),
    ("softmax_axis1", lambda: L.Softmax(axis=1), [(2, 3, 4)], "one"),
    ("add", lambda: L.Add(), [(2, 3), (2, 3), (2, 3)], "list"),
    ("subtract", lambda: L.Subtract(), [(2, 3), (2, 3)], "list"),
    ("multiply", lambda: L.Multiply(), [(2, 3), (2, 3)], "list"),
    ("average", lambda: L.Average(), [(2, 3), (2, 3)], "list"),
    ("maximum", lambda: L.Maximum(), [(2, 3), (2, 3)], "list"),
    ("minimum", lambda: L.Minimum(), [(2, 3), (2, 3)], "list"),
    ("concatenate", lambda: L.Concatenate(axis=1), [(2, 3, 2), (2, 1, 2)], "list"),
    ("dot_normalized", lambda: L.Dot(axes=(1, 1), normalize=True), [(2, 4, 3), (2, 4, 2)], "list"),
    ("dot", lambda: L.Dot(axes=2), [(2, 3, 4), (2, 5, 4)], "list"),
    ("zeropad1d", lambda: L.ZeroPadding1D((1, 2)), [(2, 3, 2)], "one"),
    ("zeropad2d", lambda: L.ZeroPadding2D(((1, 0), (2, 1))), [(2, 3, 3, 2)], "one"),
    ("crop1d", lambda: L.Cropping1D((1, 2)), [(2, 6, 2)], "one"),
    ("crop2d", lambda: L.Cropping2D(((1, 0), (2, 1))), [(2, 5, 6, 2)], "one"),
    ("upsample1d", lambda: L.UpSampling1D(3), [(2, 3, 2)], "one"),
    ("upsample2d", lambda: L.UpSampling2D((2, 3)), [(2, 3, 2, 2)], "one"),
    ("upsample2d_bilinear", lambda: L.UpSampling2D(2, interpolation="bilinear"), [(2, 3, 4, 2)], "one"),
    ("rescaling", lambda: L.Rescaling(0.5, offset=0.1), [(2, 3)], "one"),
    ("embedding", lambda: L.Embedding(7, 3), [(2, 5)], "int"),
    ("simple_rnn", lambda: L.SimpleRNN(3, return_sequences=True), [(2, 4, 3)], "one"),
    ("lstm", lambda: L.LSTM(3, return_sequences=True, go_backwards=True), [(2, 4, 3)], "one"),
    ("lstm_last", lambda: L.LSTM(4), [(2, 5, 2)], "one"),
    ("gru", lambda: L.GRU(3), [(2, 4, 3)], "one"),
    ("gru_v1", lambda: L.GRU(3, reset_after=False, return_sequences=True), [(2, 4, 3)], "one"),
    ("bidirectional", lambda: L.Bidirectional(L.LSTM(2, return_sequences=True)), [(2, 4, 3)], "one"),
    ("bidirectional_sum", lambda: L.Bidirectional(L.GRU(2), merge_mode="sum"), [(2, 4, 3)], "one"),
    ("time_distributed", lambda: L.TimeDistributed(L.Dense(2, activation="relu")), [(2, 3, 4)], "one"),
    ("mha", lambda: L.MultiHeadAttention(2, 3), [(2, 4, 5), (2, 3, 6)], "qv"),
]
TRAINING_CASES = ["batchnorm", "batchnorm_4d", "batchnorm_axis1"]


def _inputs(shapes, style, rng):
    if style == "int":
        return [rng.integers(0, 7, shapes[0]).astype(np.float32)]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _call_keras(layer, xs, style, training):
    if style == "list":
        return layer(list(xs), training=training)
    if style == "qv":
        return layer(xs[0], xs[1], training=training)
    return layer(xs[0], training=training)


def _randomize(layer, rng):
    for w in layer.weights:
        v = rng.standard_normal(w.shape).astype(np.float32) * 0.5
        if "variance" in w.name:
            v = np.abs(v) + 0.5
        w.assign(v)


def _config(layer):
    return json.loads(json.dumps(layer.get_config(), default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _run(case, training):
    _, factory, shapes, style = case
    rng = np.random.default_rng(abs(hash(case[0])) % 2**32)
    xs = _inputs(shapes, style, rng)
    layer = factory()
    _call_keras(layer, [tf.constant(x) for x in xs], style, False)     # build
    _randomize(layer, rng)
    ys = _call_keras(layer, [tf.constant(x) for x in xs], style, training)
    outs = ys if isinstance(ys, (list, tuple)) else [ys]
    cots = [rng.standard_normal(o.shape).astype(np.float32) for o in outs]

    consts = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        for c in consts:
            tape.watch(c)
        ys = _call_keras(layer, consts, style, training)
        outs_tf = ys if isinstance(ys, (list, tuple)) else [ys]
        total = tf.add_n([tf.reduce_sum(o * c) for o, c in zip(outs_tf, cots)])
    diff_inputs = style != "int"
    want = tape.gradient(total, (consts if diff_inputs else []) + list(layer.trainable_weights))

    ours = make_layer(type(layer).__name__, _config(layer), "tf_keras", layer.name)
    args = [xs] if style == "list" else xs
    ours(EagerCtx(), *args)                                            # build
    assert len(ours.weights) == len(layer.weights), "weight count"
    for w, v in zip(ours.weights, layer.get_weights()):
        assert w.value.shape == v.shape, f"weight {w.name}: {w.value.shape} vs {v.shape}"
        w.value[...] = v
    ctx = EagerCtx(training=training, track=True)
    vars_ = [Var(x, requires_grad=diff_inputs) for x in xs]
    args = [vars_] if style == "list" else vars_
    y = ours(ctx, *args)
    ys_ours = y if isinstance(y, (list, tuple)) else [y]
    for a, b in zip(ys_ours, outs):
        np.testing.assert_allclose(ctx.value(a), b.numpy(), rtol=1e-4, atol=1e-5, err_msg="forward")
    total = None
    for o, c in zip(ys_ours, cots):
        t = ctx.sum(ctx.mul(o, c), list(range(len(c.shape))))
        total = t if total is None else ctx.add(total, t)
    backward(total)
    got = ([v.grad for v in vars_] if diff_inputs else []) + [ctx.grad_of(w) for w in ours.trainable_weights]
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(tf.convert_to_tensor(w))
        g = np.zeros_like(w) if g is None else g
        scale = max(1.0, float(np.abs(w).max()))
        err = float(np.abs(g - w).max())
        assert err <= TOL * scale, f"gradient {i}: max error {err:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_gradient_matches_tensorflow(case):
    _run(case, training=False)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in TRAINING_CASES], ids=TRAINING_CASES)
def test_layer_gradient_in_training_mode(case):
    _run(case, training=True)


KERAS3_ONLY = {"celu", "glu", "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "leaky_relu", "log_sigmoid",
               "log_softmax", "relu6", "silu", "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax",
               "squareplus", "tanh_shrink", "threshold"}


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("gelu_new", "sparsemax")])
def test_activation_and_gradient(name):
    """Every activation name, against tf_keras where it has it (its formulas), else Keras 3."""
    keras3 = name in KERAS3_ONLY or name not in dir(k.activations)
    if keras3:
        import keras

        fn, flavor = keras.activations.get(name), "keras3"
    else:
        fn, flavor = k.activations.get(name), "tf_keras"
    rng = np.random.default_rng(len(name))
    x = rng.uniform(-4, 4, (3, 6)).astype(np.float32)
    cot = rng.standard_normal((3, 6)).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = fn(xt)
        total = tf.reduce_sum(y * cot[:, : y.shape[-1]])
    want_y, want_g = np.asarray(y), np.asarray(tape.gradient(total, xt))
    from wgpu_runtime.layers import activations

    ctx = EagerCtx()
    v = Var(x, requires_grad=True)
    ours = activations.get(name, flavor)(ctx, v)
    np.testing.assert_allclose(ctx.value(ours), want_y, rtol=1e-5, atol=1e-5)
    backward(ctx.sum(ctx.mul(ours, cot[:, : want_y.shape[-1]]), [0, 1]))
    np.testing.assert_allclose(v.grad, want_g, rtol=1e-4, atol=1e-4)


def test_hard_sigmoid_follows_the_model_flavor():
    from wgpu_runtime.layers import activations

    x = np.array([-4, -2.6, -1, 0, 1, 2.6, 4], np.float32)
    old = EagerCtx().value(activations.get("hard_sigmoid", "tf_keras")(EagerCtx(), x))
    new = EagerCtx().value(activations.get("hard_sigmoid", "keras3")(EagerCtx(), x))
    np.testing.assert_allclose(old, np.clip(0.2 * x + 0.5, 0, 1), atol=1e-7)
    np.testing.assert_allclose(new, np.clip(x / 6 + 0.5, 0, 1), atol=1e-7)


def test_sparsemax_is_the_simplex_projection():
    """Keras 3.15's sparsemax sums every cumulative sum in the support (keras-team/keras#23425,
    fixed upstream by #23469), so it is checked against Martins & Astudillo's algorithm: sort,
    tau = (cumsum[k] - 1) / k; gradient: s * (c - sum(c * s) / |S|) over the support S."""
    from wgpu_runtime.layers import activations

    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, (5, 7)).astype(np.float32)
    z = -np.sort(-x, axis=-1)
    cs = np.cumsum(z, axis=-1)
    k = np.arange(1, 8)
    kk = np.sum(1 + k * z > cs, axis=-1, keepdims=True)
    tau = (np.take_along_axis(cs, kk - 1, axis=-1) - 1) / kk
    want = np.maximum(x - tau, 0)
    ctx = EagerCtx()
    v = Var(x, requires_grad=True)
    y = activations.get("sparsemax")(ctx, v)
    np.testing.assert_allclose(ctx.value(y), want, atol=1e-6)
    np.testing.assert_allclose(ctx.value(y).sum(axis=-1), 1, atol=1e-6)
    cot = rng.standard_normal(x.shape).astype(np.float32)
    backward(ctx.sum(ctx.mul(y, cot), [0, 1]))
    support = (want > 0).astype(np.float64)
    grad = support * (cot - np.sum(cot * support, axis=-1, keepdims=True) / support.sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(v.grad, grad, atol=1e-5)
