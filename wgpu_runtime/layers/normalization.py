"""BatchNormalization and LayerNormalization, composed from elementwise and reduction ops.

BatchNormalization follows Keras: in training (and when trainable) it normalises with the
batch's mean and biased variance and moves the moving statistics by ``momentum``; tf_keras' fused
kernel (4-D/5-D inputs, channel axis first or last) feeds the moving variance the unbiased
(Bessel-corrected) batch variance, Keras 3 and TF.js the biased one. At inference it is
``x * scale + shift`` with scale and shift computed from the weights (folded on the host when the
graph is planned: two elementwise kernels on the GPU).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, register
from .regularizers import constraint_from, regularizer_from


def _axes(value, rank: int) -> list[int]:
    axes = value if isinstance(value, (list, tuple)) else [value]
    return sorted(int(a) % rank for a in axes)


def _param_shape(shape, axes) -> tuple[int, ...]:
    return tuple(shape[a] for a in axes)


def _broadcastable(ctx, t, rank: int, axes):
    """A parameter of shape [shape[a] for a in axes] reshaped to broadcast against rank-``rank`` x."""
    if axes == list(range(rank - len(axes), rank)):
        return t                                          # trailing axes: broadcasts as is
    full = [1] * rank
    for a, d in zip(axes, ctx.shape(t)):
        full[a] = d
    return ctx.reshape(t, full)


class _Norm(Layer):
    def params(self, shape, axes):
        c = self.config
        kw = lambda p: {"regularizer": regularizer_from(c.get(f"{p}_regularizer")),   # noqa: E731
                        "constraint": constraint_from(c.get(f"{p}_constraint"))}
        pshape = _param_shape(shape, axes)
        self.gamma = self.add_weight("gamma", pshape, init="ones", **kw("gamma")) if self.cfg("scale", True) else None
        self.beta = self.add_weight("beta", pshape, **kw("beta")) if self.cfg("center", True) else None


@register("BatchNormalization")
class BatchNormalization(_Norm):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        for k in ("renorm", "synchronized"):
            if self.config.get(k):
                raise ModelFormatError(f"BatchNormalization {self.name!r}: {k}=True is not supported")
        if self.config.get("virtual_batch_size"):
            raise ModelFormatError(f"BatchNormalization {self.name!r}: virtual_batch_size is not supported")

    def build(self, shape):
        self.axes = _axes(self.cfg("axis", -1), len(shape))
        self.params(shape, self.axes)
        self.moving_mean = self.add_weight("moving_mean", _param_shape(shape, self.axes), trainable=False)
        self.moving_variance = self.add_weight("moving_variance", _param_shape(shape, self.axes), trainable=False,
                                               init="ones")

    def _unbiased_update(self, rank: int) -> bool:
        if self.flavor != "tf_keras" or self.config.get("fused") is False or rank not in (4, 5):
            return False
        return self.axes in ([1], [rank - 1])

    def call(self, ctx, x, **_):
        rank = len(ctx.shape(x))
        eps = float(self.cfg("epsilon", 1e-3))
        if ctx.training and self.trainable:
            reduce_axes = [a for a in range(rank) if a not in self.axes]
            mean = ctx.mean(x, reduce_axes, keepdims=True)
            var = ctx.mean(ctx.op("SquaredDifference", x, mean), reduce_axes, keepdims=True)
            inv = ctx.op("Rsqrt", ctx.add(var, eps))
            if self.gamma is not None:
                inv = ctx.mul(inv, _broadcastable(ctx, ctx.weight(self.gamma), rank, self.axes))
            y = ctx.mul(ctx.sub(x, mean), inv)
            if self.beta is not None:
                y = ctx.add(y, _broadcastable(ctx, ctx.weight(self.beta), rank, self.axes))
            self._update(ctx, ctx.value(mean), ctx.value(var), ctx.shape(x), reduce_axes)
            return y
        inv = ctx.op("Rsqrt", ctx.add(ctx.weight(self.moving_variance), eps))
        if self.gamma is not None:
            inv = ctx.mul(inv, ctx.weight(self.gamma))
        shift = ctx.op("Neg", ctx.mul(ctx.weight(self.moving_mean), inv))
        if self.beta is not None:
            shift = ctx.add(shift, ctx.weight(self.beta))
        return ctx.add(ctx.mul(x, _broadcastable(ctx, inv, rank, self.axes)), _broadcastable(ctx, shift, rank, self.axes))

    def _update(self, ctx, mean, var, shape, reduce_axes):
        m = np.float32(self.cfg("momentum", 0.99))
        pshape = self.moving_mean.shape
        mean, var = mean.reshape(pshape), var.reshape(pshape)
        if self._unbiased_update(len(shape)):
            n = int(np.prod([shape[a] for a in reduce_axes]))
            var = var * np.float32(n / max(n - 1, 1))
        ctx.on_update(self.moving_mean, ctx.current(self.moving_mean) * m + mean * (1 - m))
        ctx.on_update(self.moving_variance, ctx.current(self.moving_variance) * m + var * (1 - m))


@register("LayerNormalization")
class LayerNormalization(_Norm):
    def build(self, shape):
        self.axes = _axes(self.cfg("axis", -1), len(shape))
        self.params(shape, self.axes)

    def call(self, ctx, x, **_):
        rank = len(ctx.shape(x))
        eps = float(self.cfg("epsilon", 1e-3))
        if self.cfg("rms_scaling", False):
            ms = ctx.mean(ctx.op("Square", x), self.axes, keepdims=True)
            y = ctx.mul(x, ctx.op("Rsqrt", ctx.add(ms, eps)))
            return ctx.mul(y, _broadcastable(ctx, ctx.weight(self.gamma), rank, self.axes))
        mean = ctx.mean(x, self.axes, keepdims=True)
        var = ctx.mean(ctx.op("SquaredDifference", x, mean), self.axes, keepdims=True)
        y = ctx.mul(ctx.sub(x, mean), ctx.op("Rsqrt", ctx.add(var, eps)))
        if self.gamma is not None:
            y = ctx.mul(y, _broadcastable(ctx, ctx.weight(self.gamma), rank, self.axes))
        if self.beta is not None:
            y = ctx.add(y, _broadcastable(ctx, ctx.weight(self.beta), rank, self.axes))
        return y
