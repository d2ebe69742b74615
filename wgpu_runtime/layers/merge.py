"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, register


class _Merge(Layer):
    def call(self, ctx, inputs, **_):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ModelFormatError(f"{self.class_name} {self.name!r} needs a list of at least 2 inputs")
        return self.merge(ctx, list(inputs))


@register("Add")
class Add(_Merge):
    def merge(self, ctx, xs):
        y = xs[0]
        for x in xs[1:]:
            y = ctx.add(y, x)
        return y


@register("Subtract")
class Subtract(_Merge):
    def merge(self, ctx, xs):
        if len(xs) != 2:
            raise ModelFormatError(f"Subtract {self.name!r} needs exactly 2 inputs")
        return ctx.sub(xs[0], xs[1])


@register("Multiply")
class Multiply(_Merge):
    def merge(self, ctx, xs):
        y = xs[0]
        for x in xs[1:]:
            y = ctx.mul(y, x)
        return y


@register("Average")
class Average(Add):
    def merge(self, ctx, xs):
        return ctx.mul(super().merge(ctx, xs), 1.0 / len(xs))


@register("Maximum")
class Maximum(_Merge):
    def merge(self, ctx, xs):
        y = xs[0]
        for x in xs[1:]:
            y = ctx.maximum(y, x)
        return y


@register("Minimum")
class Minimum(_Merge):
    def merge(self, ctx, xs):
        y = xs[0]
        for x in xs[1:]:
            y = ctx.minimum(y, x)
        return y


@register("Concatenate")
class Concatenate(_Merge):
    def merge(self, ctx, xs):
        rank = len(ctx.shape(xs[0]))
        return ctx.concat(xs, int(self.cfg("axis", -1)) % rank)


@register("Dot")
class Dot(_Merge):
    """Keras' batch_dot over ``axes``, optionally of l2-normalised inputs (cosine proximity)."""

    def merge(self, ctx, xs):
        if len(xs) != 2:
            raise ModelFormatError(f"Dot {self.name!r} needs exactly 2 inputs")
        x, y = xs
        rx, ry = len(ctx.shape(x)), len(ctx.shape(y))
        axes = self.config["axes"]
        ax, ay = (axes, axes) if isinstance(axes, int) else axes
        ax, ay = int(ax) % rx, int(ay) % ry
        if self.cfg("normalize", False):
            x, y = _l2_normalize(ctx, x, ax), _l2_normalize(ctx, y, ay)
        sx, sy = ctx.shape(x), ctx.shape(y)
        xrest = [d for i, d in enumerate(sx) if i not in (0, ax)]
        yrest = [d for i, d in enumerate(sy) if i not in (0, ay)]
        x = ctx.transpose(x, [0] + [i for i in range(1, rx) if i != ax] + [ax])
        y = ctx.transpose(y, [0, ay] + [i for i in range(1, ry) if i != ay])
        k = sx[ax]
        x = ctx.reshape(x, [-1, int(np.prod(xrest, dtype=np.int64)), k])
        y = ctx.reshape(y, [-1, k, int(np.prod(yrest, dtype=np.int64))])
        out = ctx.matmul(x, y)
        shape = xrest + yrest
        return ctx.reshape(out, [-1, *(shape or [1])])


def _l2_normalize(ctx, x, axis):
    """tf.linalg.l2_normalize: x * rsqrt(max(sum(x^2), 1e-12))."""
    ss = ctx.sum(ctx.op("Square", x), [axis], keepdims=True)
    return ctx.mul(x, ctx.op("Rsqrt", ctx.maximum(ss, 1e-12)))
