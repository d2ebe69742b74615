"""Convolution layers (Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D) and
the spatial reshaping layers (ZeroPadding, Cropping, UpSampling), over the registry's NHWC ops.
``channels_first`` runs through the ops' NCHW data format."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, pair, register
from .core import Activated


def _first(layer) -> bool:
    return layer.cfg("data_format", "channels_last") == "channels_first"


class _Conv(Activated):
    rank = 2

    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        c = self.config
        self.kernel_size = pair(c["kernel_size"], self.rank)
        self.strides = pair(self.cfg("strides", 1), self.rank)
        self.dilation = pair(self.cfg("dilation_rate", 1), self.rank)
        self.padding = str(self.cfg("padding", "valid")).lower()
        self.groups = int(self.cfg("groups", 1))
        self.channels_first = _first(self)
        if self.padding not in ("valid", "same", "causal"):
            raise ModelFormatError(f"{self.class_name} {self.name!r}: padding {self.padding!r} is not supported")
        if self.padding == "causal" and self.rank != 1:
            raise ModelFormatError(f"{self.class_name} {self.name!r}: causal padding is for 1-D convolutions")

    def attrs2d(self, strides, dilation, padding) -> dict:
        fmt = "NCHW" if self.channels_first else "NHWC"
        if self.channels_first:
            return {"strides": [1, 1, *strides], "dilations": [1, 1, *dilation], "padding": padding,
                    "data_format": fmt}
        return {"strides": [1, *strides, 1], "dilations": [1, *dilation, 1], "padding": padding, "data_format": fmt}

    def bias_add(self, ctx, y):
        if self.bias is None:
            return y
        return ctx.op("BiasAdd", y, ctx.weight(self.bias), data_format="NCHW" if self.channels_first else "NHWC")

    def channels(self, shape) -> int:
        return shape[1] if self.channels_first else shape[-1]


@register("Conv2D", "Conv1D")
class Conv(_Conv):
    """Conv1D runs as a Conv2D over [batch, 1, steps, channels] (as TF does); causal padding pads
    the start of the sequence by (kernel - 1) * dilation."""

    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        self.rank = 1 if (class_name or "").startswith(("Conv1D", "Convolution1D")) else 2
        super().__init__(config, flavor, class_name)

    def build(self, shape):
        cin = self.channels(shape)
        if cin % self.groups:
            raise ModelFormatError(f"{self.name!r}: {cin} input channels are not divisible into {self.groups} groups")
        filters = int(self.config["filters"])
        self.kernel = self.add_weight("kernel", (*self.kernel_size, cin // self.groups, filters),
                                      **self.weight_args("kernel"))
        self.bias = self.add_weight("bias", (filters,), **self.weight_args("bias")) if self.cfg("use_bias", True) else None

    def call(self, ctx, x):
        kernel = ctx.weight(self.kernel)
        if self.rank == 1:
            axis = 2 if self.channels_first else 1
            if self.padding == "causal":
                left = (self.kernel_size[0] - 1) * self.dilation[0]
                pads = [[0, 0], [0, 0], [left, 0]] if self.channels_first else [[0, 0], [left, 0], [0, 0]]
                x = ctx.op("Pad", x, np.array(pads, np.int32))
            x = ctx.expand_dims(x, axis)
            kernel = ctx.expand_dims(kernel, 0)
            attrs = self.attrs2d((1, self.strides[0]), (1, self.dilation[0]),
                                 "VALID" if self.padding in ("causal", "valid") else "SAME")
        else:
            attrs = self.attrs2d(self.strides, self.dilation, self.padding.upper())
        y = self._grouped(ctx, x, kernel, attrs)
        if self.rank == 1:
            y = ctx.squeeze(y, 2 if self.channels_first else 1)
        return self.finish(ctx, self.bias_add(ctx, y))

    def _grouped(self, ctx, x, kernel, attrs):
        if self.groups == 1:
            return ctx.op("Conv2D", x, kernel, **attrs)
        caxis = 1 if self.channels_first else 3
        xs = ctx.split(x, self.groups, caxis)
        ks = ctx.split(kernel, self.groups, 3)
        return ctx.concat([ctx.op("Conv2D", a, k, **attrs) for a, k in zip(xs, ks)], caxis)


def deconv_length(size: int, k: int, padding: str, output_padding, stride: int, dilation: int) -> int:
    """Keras' conv_utils.deconv_output_length."""
    k = k + (k - 1) * (dilation - 1)
    if output_padding is None:
        if padding == "valid":
            return size * stride + max(k - stride, 0)
        return size * stride
    pad = k // 2 if padding == "same" else 0
    return (size - 1) * stride + k - 2 * pad + int(output_padding)


@register("Conv2DTranspose")
class Conv2DTranspose(_Conv):
    def build(self, shape):
        filters = int(self.config["filters"])
        self.kernel = self.add_weight("kernel", (*self.kernel_size, filters, self.channels(shape)),
                                      **self.weight_args("kernel"))
        self.bias = self.add_weight("bias", (filters,), **self.weight_args("bias")) if self.cfg("use_bias", True) else None

    def call(self, ctx, x):
        shape = ctx.shape(x)
        h, w = (shape[2], shape[3]) if self.channels_first else (shape[1], shape[2])
        op = self.config.get("output_padding")
        op = (None, None) if op is None else pair(op)
        oh = deconv_length(h, self.kernel_size[0], self.padding, op[0], self.strides[0], self.dilation[0])
        ow = deconv_length(w, self.kernel_size[1], self.padding, op[1], self.strides[1], self.dilation[1])
        filters = int(self.config["filters"])
        tail = [filters, oh, ow] if self.channels_first else [oh, ow, filters]
        attrs = self.attrs2d(self.strides, self.dilation, self.padding.upper())
        y = ctx.op("Conv2DBackpropInput", ctx.batch_shape(x, tail), ctx.weight(self.kernel), x, **attrs)
        return self.finish(ctx, self.bias_add(ctx, y))


@register("DepthwiseConv2D")
class DepthwiseConv2D(_Conv):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        config = dict(config or {})
        config.setdefault("kernel_size", config.get("kernel_size", 1))
        super().__init__(config, flavor, class_name)

    def build(self, shape):
        mult = int(self.cfg("depth_multiplier", 1))
        cin = self.channels(shape)
        self.kernel = self.add_weight("depthwise_kernel", (*self.kernel_size, cin, mult),
                                      **self.weight_args("depthwise"))
        self.bias = self.add_weight("bias", (cin * mult,), **self.weight_args("bias")) \
            if self.cfg("use_bias", True) else None

    def call(self, ctx, x):
        attrs = self.attrs2d(self.strides, self.dilation, self.padding.upper())
        y = ctx.op("DepthwiseConv2dNative", x, ctx.weight(self.kernel), **attrs)
        return self.finish(ctx, self.bias_add(ctx, y))


@register("SeparableConv2D")
class SeparableConv2D(_Conv):
    def build(self, shape):
        mult = int(self.cfg("depth_multiplier", 1))
        cin = self.channels(shape)
        filters = int(self.config["filters"])
        self.depthwise = self.add_weight("depthwise_kernel", (*self.kernel_size, cin, mult),
                                         **self.weight_args("depthwise"))
        self.pointwise = self.add_weight("pointwise_kernel", (1, 1, cin * mult, filters),
                                         **self.weight_args("pointwise"))
        self.bias = self.add_weight("bias", (filters,), **self.weight_args("bias")) if self.cfg("use_bias", True) else None

    def call(self, ctx, x):
        attrs = self.attrs2d(self.strides, self.dilation, self.padding.upper())
        y = ctx.op("DepthwiseConv2dNative", x, ctx.weight(self.depthwise), **attrs)
        y = ctx.op("Conv2D", y, ctx.weight(self.pointwise), **self.attrs2d((1, 1), (1, 1), "VALID"))
        return self.finish(ctx, self.bias_add(ctx, y))


# ------------------------------------------------------------------ padding, cropping, upsampling
def _spatial_pairs(value, rank: int) -> list[tuple[int, int]]:
    """Keras padding/cropping specs: int, (a, b) per dim, or ((lo, hi), ...)."""
    if isinstance(value, int):
        return [(value, value)] * rank
    value = list(value)
    if rank == 1:
        return [tuple(int(v) for v in value)] if len(value) == 2 else [(int(value[0]), int(value[0]))]
    out = []
    for v in value:
        out.append((int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1])))
    return out


def _full_pairs(layer, pairs):
    """Per-dim pairs over the whole tensor (batch and channels untouched)."""
    return [(0, 0), (0, 0), *pairs] if _first(layer) else [(0, 0), *pairs, (0, 0)]


@register("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
class ZeroPadding(Layer):
    def call(self, ctx, x):
        rank = len(ctx.shape(x)) - 2
        pairs = _spatial_pairs(self.cfg("padding", 1), rank)
        return ctx.op("Pad", x, np.array(_full_pairs(self, pairs), np.int32))


@register("Cropping1D", "Cropping2D", "Cropping3D")
class Cropping(Layer):
    def call(self, ctx, x):
        shape = ctx.shape(x)
        rank = len(shape) - 2
        pairs = _full_pairs(self, _spatial_pairs(self.cfg("cropping", 1), rank))
        begin = [lo for lo, _ in pairs]
        size = [-1] + [d - lo - hi for d, (lo, hi) in zip(shape[1:], pairs[1:])]
        return ctx.slice(x, begin, size)


@register("UpSampling1D")
class UpSampling1D(Layer):
    def call(self, ctx, x):
        s = int(self.cfg("size", 2))
        _, t, c = ctx.shape(x)
        y = ctx.op("Tile", ctx.expand_dims(x, 2), np.array([1, 1, s, 1], np.int32))
        return ctx.reshape(y, [-1, t * s, c])


@register("UpSampling2D")
class UpSampling2D(Layer):
    def call(self, ctx, x):
        sh, sw = pair(self.cfg("size", 2))
        interp = str(self.cfg("interpolation", "nearest"))
        first = _first(self)
        if first:
            x = ctx.transpose(x, [0, 2, 3, 1])
        _, h, w, c = ctx.shape(x)
        if interp == "nearest":
            y = ctx.op("Tile", ctx.reshape(x, [-1, h, 1, w, 1, c]), np.array([1, 1, sh, 1, sw, 1], np.int32))
            y = ctx.reshape(y, [-1, h * sh, w * sw, c])
        elif interp == "bilinear":
            y = ctx.op("ResizeBilinear", x, np.array([h * sh, w * sw], np.int32), half_pixel_centers=True)
        else:
            raise ModelFormatError(f"UpSampling2D {self.name!r}: interpolation {interp!r} is not supported "
                                   "(nearest, bilinear)")
        return ctx.transpose(y, [0, 3, 1, 2]) if first else y
