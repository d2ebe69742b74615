"""Convolutions and pools beyond tests/test_ops.py:
  * the references of the fused ops (_FusedConv2D, FusedDepthwiseConv2dNative: not TF raw ops)
    against compositions of TF ops, for every fused_ops variant;
  * the cases TF's CPU kernels cannot run (NCHW; dilated or unequally strided depthwise; dilated
    Conv2DBackpropInput), their references checked against TF through transposes, per-channel
    Conv2D or the backprop's definition, and run on each adapter;
  * MobileNetV2-sized layers on each adapter against TF itself.
"""
import numpy as np
import pytest

from wgpu_runtime.graph.single_op import run_op
from wgpu_runtime.ops import REGISTRY, conv, pool

from test_ops import assert_close

tf = pytest.importorskip("tensorflow")

FUSED = [(name, i) for name in ("_FusedConv2D", "FusedDepthwiseConv2dNative") for i in range(len(REGISTRY[name].cases))]
EXTRA = [(name, i) for table in (conv.EXTRA_CASES, pool.EXTRA_CASES) for name, cases in sorted(table.items())
         for i in range(len(cases))]


def _extra(name, i):
    return {**conv.EXTRA_CASES, **pool.EXTRA_CASES}[name][i]


# ------------------------------------------------------------------------------- TF compositions
def _tf_nhwc(fn, attrs, x, *rest):
    """fn(nhwc_attrs, x_nhwc, *rest) for data_format NCHW through transposes."""
    if conv.data_format(attrs) == "NCHW":
        y = fn(conv.nhwc_attrs(attrs), np.ascontiguousarray(x.transpose(0, 2, 3, 1)), *rest)
        return np.ascontiguousarray(np.asarray(y).transpose(0, 3, 1, 2))
    return np.asarray(fn(attrs, x, *rest))


def _tf_conv(attrs, x, f):
    return tf.raw_ops.Conv2D(input=x, filter=f, strides=attrs["strides"], padding=attrs["padding"],
                             explicit_paddings=attrs.get("explicit_paddings", []),
                             dilations=attrs.get("dilations", [1, 1, 1, 1])).numpy()


def _tf_depthwise(attrs, x, f):
    """Depthwise as one Conv2D per (channel, multiplier): Conv2D runs any strides and dilations."""
    kh, kw, c, m = f.shape
    outs = [_tf_conv(attrs, x[..., i:i + 1], f[:, :, i:i + 1, j:j + 1]) for i in range(c) for j in range(m)]
    return np.concatenate(outs, axis=-1)


def _tf_epilogue(attrs, y, extra):
    ops = attrs["fused_ops"]
    if ops[0] == "BiasAdd":
        y = tf.nn.bias_add(y, extra[0])
        rest = extra[1:]
    else:
        scale, offset, mean, var = extra[:4]
        y = tf.raw_ops.FusedBatchNormV3(x=y, scale=scale, offset=offset, mean=mean, variance=var,
                                        epsilon=attrs["epsilon"], is_training=False)[0]
        rest = extra[4:]
    if ops[1:2] == ["Add"]:    # a residual added before the activation
        y, rest, ops = y + rest[0], rest[1:], ops[:1] + ops[2:]
    act = ops[1] if len(ops) > 1 else None
    if act == "Prelu":
        alpha = rest[0]
        y = tf.maximum(y, 0.0) + alpha * tf.minimum(y, 0.0)
    elif act == "LeakyRelu":
        y = tf.nn.leaky_relu(y, alpha=attrs.get("leakyrelu_alpha", 0.2))
    elif act is not None:
        y = {"Relu": tf.nn.relu, "Relu6": tf.nn.relu6, "Elu": tf.nn.elu, "Sigmoid": tf.sigmoid,
             "Tanh": tf.tanh}[act](y)
    return np.asarray(y)


def _tf_fused(name, attrs, x, f, *extra):
    core = _tf_conv if name == "_FusedConv2D" else _tf_depthwise
    if "Add" in attrs["fused_ops"] and conv.data_format(attrs) == "NCHW":    # the residual, NHWC like x
        k = 1 if attrs["fused_ops"][0] == "BiasAdd" else 4
        r = np.asarray(extra[k])
        extra = (*extra[:k], r.reshape((1,) * (4 - r.ndim) + r.shape).transpose(0, 2, 3, 1), *extra[k + 1:])
    return _tf_nhwc(lambda a, xx: _tf_epilogue(a, core(a, xx, f), extra), attrs, x)


def _tf_backprop_input(attrs, sizes, f, dy):
    """dx[i] = sum(conv(e_i) * dy): the definition, with TF's forward Conv2D on one-hot inputs."""
    n, h, w, c = conv.to_nhwc(sizes, conv.data_format(attrs))
    a = conv.nhwc_attrs(attrs)
    dy = dy.transpose(0, 2, 3, 1) if conv.data_format(attrs) == "NCHW" else dy
    k = h * w * c
    basis = np.eye(k, dtype=np.float32).reshape(k, h, w, c)
    jac = _tf_conv(a, basis, f).astype(np.float64).reshape(k, -1)           # [input element, output element]
    dx = (dy.reshape(n, -1).astype(np.float64) @ jac.T).reshape(n, h, w, c).astype(np.float32)
    return np.ascontiguousarray(dx.transpose(0, 3, 1, 2)) if conv.data_format(attrs) == "NCHW" else dx


def _tf_pool(name):
    def fn(attrs, x):
        op = getattr(tf.raw_ops, name)
        kw = {"explicit_paddings": attrs["explicit_paddings"]} if "explicit_paddings" in attrs else {}
        arg = "input" if name == "MaxPool" else "value"
        return op(**{arg: x}, ksize=attrs["ksize"], strides=attrs["strides"], padding=attrs["padding"], **kw).numpy()
    return fn


def _tf_reference(name, attrs, inputs):
    if name in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
        return _tf_fused(name, attrs, *inputs)
    if name == "Conv2D":
        return _tf_nhwc(_tf_conv, attrs, *inputs)
    if name == "DepthwiseConv2dNative":
        return _tf_nhwc(_tf_depthwise, attrs, *inputs)
    if name == "Conv2DBackpropInput":
        return _tf_backprop_input(attrs, *inputs)
    return _tf_nhwc(_tf_pool(name), attrs, *inputs)


# ------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name,idx", FUSED, ids=[f"{n}-{i}" for n, i in FUSED])
def test_fused_reference_matches_tf_composition(name, idx):
    case = REGISTRY[name].cases[idx]
    inputs = case.materialize(seed=idx)
    got = REGISTRY[name].run_reference(case.attrs, inputs)[0]
    assert_close(got, _tf_reference(name, case.attrs, inputs), 1e-5,
                 f"{name} case {idx} ({case.note}) vs TF: float32 sums and activations in TF's order")


@pytest.mark.parametrize("name,idx", EXTRA, ids=[f"{n}-{i}" for n, i in EXTRA])
def test_extra_reference_matches_tf(name, idx):
    case = _extra(name, idx)
    inputs = case.materialize(seed=idx)
    got = REGISTRY[name].run_reference(case.attrs, inputs)[0]
    assert_close(got, _tf_reference(name, case.attrs, inputs), 2e-6, f"{name} extra case {idx} ({case.note}) vs TF")


@pytest.mark.parametrize("name,idx", EXTRA, ids=[f"{n}-{i}" for n, i in EXTRA])
def test_extra_on_gpu(device, name, idx):
    op, case = REGISTRY[name], _extra(name, idx)
    inputs = case.materialize(seed=idx)
    want = op.run_reference(case.attrs, inputs)[0]
    got = run_op(name, case.attrs, inputs, device)[0]
    assert_close(got, want, op.tol[0], f"{name} extra case {idx} ({case.note}) on {device.backend}")


# MobileNetV2 224 layers, checked against TF (not only the reference)
_S1, _S2 = [1, 1, 1, 1], [1, 2, 2, 1]
MOBILENET = [
    ("_FusedConv2D", (1, 224, 224, 3), (3, 3, 3, 32), {"strides": _S2, "padding": "SAME"}, "Conv1 3x3/2"),
    ("_FusedConv2D", (1, 56, 56, 24), (1, 1, 24, 144), {"strides": _S1, "padding": "SAME"}, "block_2 expand 1x1"),
    ("_FusedConv2D", (1, 7, 7, 320), (1, 1, 320, 1280), {"strides": _S1, "padding": "VALID"}, "Conv_1 1x1"),
    ("FusedDepthwiseConv2dNative", (1, 113, 113, 96), (3, 3, 96, 1), {"strides": _S2, "padding": "VALID"},
     "block_1 depthwise 3x3/2 (after Pad)"),
    ("FusedDepthwiseConv2dNative", (1, 28, 28, 192), (3, 3, 192, 1), {"strides": _S1, "padding": "SAME"},
     "block_4 depthwise 3x3"),
]


@pytest.mark.parametrize("name,x_shape,f_shape,attrs,note", MOBILENET, ids=[m[-1] for m in MOBILENET])
def test_mobilenet_layers_match_tf(device, name, x_shape, f_shape, attrs, note):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 6, x_shape).astype(np.float32)               # post-Relu6 activations
    f = rng.normal(0, (1 / np.prod(f_shape[:-1])) ** 0.5, f_shape).astype(np.float32)
    cout = f_shape[3] * (f_shape[2] if name != "_FusedConv2D" else 1)
    bias = rng.normal(0, 1, cout).astype(np.float32)
    attrs = {**attrs, "fused_ops": ["BiasAdd", "Relu6"], "num_args": 1}
    got = run_op(name, attrs, [x, f, bias], device)[0]
    assert_close(got, _tf_fused(name, attrs, x, f, bias), 1e-5,
                 f"{note} on {device.backend}: up to 320 float32 products per output, summed in another order")
