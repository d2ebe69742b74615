"""Keras activations (tf_keras, Keras 3 and TF.js names) composed from registry ops.

``get(spec, flavor)`` turns a config's ``activation`` (a name, or Keras 3's
``{"class_name": "function", "config": "relu"}``) into ``fn(ctx, x)``. Where Keras versions
disagree the model's flavor decides: ``hard_sigmoid`` is clip(0.2 x + 0.5) in tf_keras and TF.js
but relu6(x + 3) / 6 in Keras 3. A bare ``gelu`` is the exact (erf) form everywhere; TF.js'
``gelu_new`` is the tanh approximation.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _linear(ctx, x):
    return x


def _unary(op):
    return lambda ctx, x: ctx.op(op, x)


def _softsign(ctx, x):
    return ctx.div(x, ctx.add(ctx.op("Abs", x), 1.0))


def _swish(ctx, x):
    return ctx.mul(x, ctx.op("Sigmoid", x))


def _hard_sigmoid_02(ctx, x):            # tf_keras / TF.js
    return ctx.clip(ctx.add(ctx.mul(x, 0.2), 0.5), 0.0, 1.0)


def _hard_sigmoid_6(ctx, x):             # Keras 3: relu6(x + 3) / 6
    return ctx.mul(ctx.op("Relu6", ctx.add(x, 3.0)), 1.0 / 6.0)


def _hard_silu(ctx, x):
    return ctx.mul(x, _hard_sigmoid_6(ctx, x))


def _gelu_exact(ctx, x):
    return ctx.mul(ctx.mul(x, 0.5), ctx.add(ctx.op("Erf", ctx.mul(x, 1 / math.sqrt(2))), 1.0))


def _gelu_tanh(ctx, x):
    inner = ctx.mul(ctx.add(x, ctx.mul(ctx.mul(ctx.op("Square", x), x), 0.044715)), SQRT_2_OVER_PI)
    return ctx.mul(ctx.mul(x, 0.5), ctx.add(ctx.op("Tanh", inner), 1.0))


def _mish(ctx, x):
    return ctx.mul(x, ctx.op("Tanh", ctx.op("Softplus", x)))


def _celu(ctx, x, alpha=1.0):
    neg = ctx.minimum(ctx.mul(ctx.sub(ctx.op("Exp", ctx.mul(x, 1.0 / alpha)), 1.0), alpha), 0.0)
    return ctx.add(ctx.op("Relu", x), neg)


def _glu(ctx, x):
    a, b = ctx.split(x, 2, -1)
    return ctx.mul(a, ctx.op("Sigmoid", b))


def _where(ctx, cond, a, b):
    return ctx.op("SelectV2", cond, a, ctx._c(b))


def _hard_shrink(ctx, x, t=0.5):
    return _where(ctx, ctx.op("Greater", ctx.op("Abs", x), ctx.f32(t)), x, ctx.f32(0.0))


def _soft_shrink(ctx, x, t=0.5):
    inner = _where(ctx, ctx.op("Less", x, ctx.f32(-t)), ctx.add(x, t), ctx.f32(0.0))
    return _where(ctx, ctx.op("Greater", x, ctx.f32(t)), ctx.sub(x, t), inner)


def _hard_tanh(ctx, x):
    return ctx.clip(x, -1.0, 1.0)


def _log_sigmoid(ctx, x):
    return ctx.op("Neg", ctx.op("Softplus", ctx.op("Neg", x)))


def _sparse_plus(ctx, x):
    quad = ctx.mul(ctx.op("Square", ctx.add(x, 1.0)), 0.25)
    inner = _where(ctx, ctx.op("LessEqual", x, ctx.f32(-1.0)), ctx.f32(0.0), quad)
    return _where(ctx, ctx.op("GreaterEqual", x, ctx.f32(1.0)), x, inner)


def _sparse_sigmoid(ctx, x):
    return ctx.clip(ctx.mul(ctx.add(x, 1.0), 0.5), 0.0, 1.0)


def _squareplus(ctx, x, b=4.0):
    return ctx.mul(ctx.add(x, ctx.op("Sqrt", ctx.add(ctx.op("Square", x), b))), 0.5)


def _tanh_shrink(ctx, x):
    return ctx.sub(x, ctx.op("Tanh", x))


def _leaky_relu(ctx, x, slope=0.2):
    return ctx.op("LeakyRelu", x, alpha=float(slope))


def softmax(ctx, x, axis=-1):
    return ctx.over_axis("Softmax", x, axis)


def log_softmax(ctx, x, axis=-1):
    return ctx.over_axis("LogSoftmax", x, axis)


def _sparsemax(ctx, x):
    """Sparsemax over the last axis without sorting: z_i is in the support when
    1 + k_i z_i > s_i, with k_i = #{j: z_j >= z_i} and s_i = sum of those z_j."""
    z = ctx.sub(x, ctx.reduce("Max", x, [-1], keepdims=True))
    zi = ctx.expand_dims(z, -1)                       # [..., i, 1]
    zj = ctx.expand_dims(z, -2)                       # [..., 1, j]
    ge = ctx.op("Cast", ctx.op("GreaterEqual", zj, zi), DstT="float32", SrcT="bool")   # [..., i, j]
    k = ctx.sum(ge, [-1])
    s = ctx.sum(ctx.mul(ge, zj), [-1])
    support = ctx.op("Cast", ctx.op("Greater", ctx.add(ctx.mul(k, z), 1.0), s), DstT="float32", SrcT="bool")
    size = ctx.sum(support, [-1], keepdims=True)
    tau = ctx.div(ctx.sub(ctx.sum(ctx.mul(support, z), [-1], keepdims=True), 1.0), size)
    return ctx.op("Relu", ctx.sub(z, tau))


_COMMON = {
    "linear": _linear, "relu": _unary("Relu"), "relu6": _unary("Relu6"), "elu": _unary("Elu"),
    "selu": _unary("Selu"), "sigmoid": _unary("Sigmoid"), "tanh": _unary("Tanh"),
    "softplus": _unary("Softplus"), "softsign": _softsign, "exponential": _unary("Exp"),
    "swish": _swish, "silu": _swish, "mish": _mish, "softmax": softmax, "log_softmax": log_softmax,
    "hard_silu": _hard_silu, "hard_swish": _hard_silu, "celu": _celu, "glu": _glu,
    "hard_shrink": _hard_shrink, "soft_shrink": _soft_shrink, "hard_tanh": _hard_tanh,
    "leaky_relu": _leaky_relu, "log_sigmoid": _log_sigmoid, "sparse_plus": _sparse_plus,
    "sparse_sigmoid": _sparse_sigmoid, "sparsemax": _sparsemax, "squareplus": _squareplus,
    "tanh_shrink": _tanh_shrink, "gelu": _gelu_exact, "gelu_new": _gelu_tanh,
}
_BY_FLAVOR = {
    "keras3": {"hard_sigmoid": _hard_sigmoid_6},
    "tf_keras": {"hard_sigmoid": _hard_sigmoid_02},
    "tfjs": {"hard_sigmoid": _hard_sigmoid_02},
}
NAMES = sorted(set(_COMMON) | set(_BY_FLAVOR["keras3"]))


def name_of(spec) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, dict):   # Keras 3: {"module": "keras.activations", "class_name": "function", "config": "relu"}
        cfg = spec.get("config")
        spec = cfg if isinstance(cfg, str) else spec.get("class_name")
    if not isinstance(spec, str):
        raise ModelFormatError(f"activation {spec!r} is not a name")
    return spec


def get(spec, flavor: str = "tf_keras"):
    """``fn(ctx, x)`` for an activation config value (None: linear)."""
    name = name_of(spec)
    if name is None:
        return _linear
    key = name.lower()
    fn = _BY_FLAVOR.get(flavor, _BY_FLAVOR["tf_keras"]).get(key) or _COMMON.get(key)
    if fn is None:
        raise ModelFormatError(f"unknown activation {name!r} (known: {', '.join(NAMES)})")
    return fn


def apply(ctx, fn, x):
    return (fn if callable(fn) else get(fn))(ctx, x)
