"""Pooling layers: Max/Average 1D/2D (1-D pools run as 2-D pools over [batch, 1, steps, channels])
and the global pools (Mean / Max over the spatial axes)."""
from __future__ import annotations

from .base import Layer, pair, register


def _first(layer) -> bool:
    return layer.cfg("data_format", "channels_last") == "channels_first"


@register("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
class Pooling(Layer):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        cls = class_name or "MaxPooling2D"
        self.rank = 1 if "1D" in cls else 2
        self.op = "MaxPool" if cls.startswith("Max") else "AvgPool"
        size = self.cfg("pool_size", 2)
        self.size = pair(size, self.rank)
        strides = self.config.get("strides")
        self.strides = self.size if strides is None else pair(strides, self.rank)
        self.padding = str(self.cfg("padding", "valid")).upper()

    def call(self, ctx, x):
        first = _first(self)
        if self.rank == 1:
            x = ctx.expand_dims(x, 2 if first else 1)
            size, strides = (1, *self.size), (1, *self.strides)
        else:
            size, strides = self.size, self.strides
        if first:
            attrs = {"ksize": [1, 1, *size], "strides": [1, 1, *strides], "data_format": "NCHW"}
        else:
            attrs = {"ksize": [1, *size, 1], "strides": [1, *strides, 1], "data_format": "NHWC"}
        y = ctx.op(self.op, x, padding=self.padding, **attrs)
        return ctx.squeeze(y, 2 if first else 1) if self.rank == 1 else y


@register("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
          "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D")
class GlobalPooling(Layer):
    def call(self, ctx, x, **_):
        rank = len(ctx.shape(x))
        axes = list(range(2, rank)) if _first(self) else list(range(1, rank - 1))
        op = "Max" if self.class_name.startswith("GlobalMax") else "Mean"
        return ctx.reduce(op, x, axes, keepdims=bool(self.cfg("keepdims", False)))
