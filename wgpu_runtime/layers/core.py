"""Core layers: Dense, Activation and the activation layers, Dropout family, Flatten, Reshape,
Permute, RepeatVector, Rescaling, Embedding."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError
from . import activations
from .base import Layer, integer, register
from .regularizers import constraint_from, regularizer_from


class Activated(Layer):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        self.activation = activations.get(self.config.get("activation"), flavor)
        self.activity_regularizer = regularizer_from(self.config.get("activity_regularizer"))

    def finish(self, ctx, y):
        y = self.activation(ctx, y)
        if self.activity_regularizer is not None:
            ctx.add_activity_loss(self.activity_regularizer, y)
        return y

    def weight_args(self, prefix: str) -> dict:
        return {"regularizer": regularizer_from(self.config.get(f"{prefix}_regularizer")),
                "constraint": constraint_from(self.config.get(f"{prefix}_constraint"))}


@register("Dense")
class Dense(Activated):
    def build(self, shape):
        units = integer(self.config.get("units"), f"layer {self.name!r} (Dense): units", 1)
        self.kernel = self.add_weight("kernel", (shape[-1], units), **self.weight_args("kernel"))
        self.bias = self.add_weight("bias", (units,), **self.weight_args("bias")) \
            if self.cfg("use_bias", True) else None

    def call(self, ctx, x):
        return self.finish(ctx, ctx.dense(x, ctx.weight(self.kernel),
                                          None if self.bias is None else ctx.weight(self.bias)))


@register("Activation")
class Activation(Activated):
    def call(self, ctx, x):
        return self.finish(ctx, x)


@register("ReLU")
class ReLU(Layer):
    """Keras' relu(x, negative_slope, max_value, threshold), as tf_keras' backend.relu builds it."""

    def call(self, ctx, x):
        slope = float(self.cfg("negative_slope", 0.0))
        max_value = self.config.get("max_value")
        threshold = float(self.cfg("threshold", 0.0))
        if slope != 0 and max_value is None and threshold == 0:
            return ctx.op("LeakyRelu", x, alpha=slope)
        if slope == 0 and threshold == 0 and max_value is None:
            return ctx.op("Relu", x)
        if slope == 0 and threshold == 0 and float(max_value) == 6.0:
            return ctx.op("Relu6", x)
        neg = ctx.op("Relu", ctx.sub(threshold, x)) if slope else None
        if threshold != 0:
            y = ctx.mul(x, ctx.op("Cast", ctx.op("Greater", x, ctx.f32(threshold)), SrcT="bool", DstT="float32"))
        else:
            y = ctx.op("Relu", x)
        if max_value is not None:
            y = ctx.clip(y, 0.0, float(max_value))
        if slope:
            y = ctx.sub(y, ctx.mul(neg, slope))
        return y


@register("LeakyReLU")
class LeakyReLU(Layer):
    def call(self, ctx, x):
        slope = self.config.get("negative_slope", self.config.get("alpha"))
        return ctx.op("LeakyRelu", x, alpha=float(0.3 if slope is None else slope))


@register("PReLU")
class PReLU(Layer):
    def build(self, shape):
        shared = self.cfg("shared_axes", None) or []
        shared = [shared] if isinstance(shared, int) else list(shared)
        alpha_shape = [1 if i + 1 in shared else d for i, d in enumerate(shape[1:])]
        self.alpha = self.add_weight("alpha", alpha_shape,
                                     regularizer=regularizer_from(self.config.get("alpha_regularizer")),
                                     constraint=constraint_from(self.config.get("alpha_constraint")))

    def call(self, ctx, x):
        return ctx.op("Prelu", x, ctx.weight(self.alpha))


@register("ELU")
class ELU(Layer):
    def call(self, ctx, x):
        alpha = float(self.cfg("alpha", 1.0))
        y = ctx.op("Elu", x)
        if alpha == 1.0:
            return y
        return ctx.op("SelectV2", ctx.op("Greater", x, ctx.f32(0)), y, ctx.mul(y, alpha))


@register("ThresholdedReLU")
class ThresholdedReLU(Layer):
    def call(self, ctx, x):
        theta = float(self.cfg("theta", 1.0))
        return ctx.mul(x, ctx.op("Cast", ctx.op("Greater", x, ctx.f32(theta)), SrcT="bool", DstT="float32"))


@register("Softmax")
class Softmax(Layer):
    def call(self, ctx, x, mask=None):
        axis = self.cfg("axis", -1)
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ModelFormatError(f"Softmax {self.name!r}: softmax over several axes is not supported")
            axis = axis[0]
        return activations.softmax(ctx, x, int(axis))


# ---------------------------------------------------------------------------------- dropout
class _Noise(Layer):
    """Identity at inference; in training the subclass' noise."""

    def call(self, ctx, x, **_):
        if not ctx.training or not self.rate_active():
            return x
        return self.noisy(ctx, x)

    def rate_active(self) -> bool:
        return float(self.cfg("rate", 0.0)) > 0


@register("Dropout")
class Dropout(_Noise):
    def noise_shape(self, shape):
        ns = self.config.get("noise_shape")
        if ns is None:
            return shape
        return tuple(s if d is None else int(d) for d, s in zip(ns, shape))

    def noisy(self, ctx, x):
        rate = float(self.config["rate"])
        return ctx.mul(x, ctx.random_mask(self.noise_shape(ctx.shape(x)), rate))


@register("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
class SpatialDropout(Dropout):
    """Drops whole feature maps: the mask is 1 along the spatial dims."""

    def noise_shape(self, shape):
        first = self.cfg("data_format", "channels_last") == "channels_first"
        if first:
            return (shape[0], shape[1]) + (1,) * (len(shape) - 2)
        return (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)


@register("GaussianDropout")
class GaussianDropout(_Noise):
    def noisy(self, ctx, x):
        rate = float(self.config["rate"])
        std = math.sqrt(rate / (1.0 - rate))
        return ctx.mul(x, (1.0 + std * ctx.rng.standard_normal(ctx.shape(x))).astype(np.float32))


@register("GaussianNoise")
class GaussianNoise(_Noise):
    def rate_active(self):
        return float(self.cfg("stddev", 0.0)) > 0

    def noisy(self, ctx, x):
        return ctx.add(x, (float(self.config["stddev"]) * ctx.rng.standard_normal(ctx.shape(x))).astype(np.float32))


# --------------------------------------------------------------------------------- reshaping
@register("Flatten")
class Flatten(Layer):
    def call(self, ctx, x):
        shape = ctx.shape(x)
        if self.cfg("data_format", "channels_last") == "channels_first" and len(shape) > 2:
            x = ctx.transpose(x, [0, *range(2, len(shape)), 1])
        return ctx.reshape(x, [-1, int(np.prod(shape[1:], dtype=np.int64))])


@register("Reshape")
class Reshape(Layer):
    def call(self, ctx, x):
        target = [int(d) for d in self.config["target_shape"]]
        size = int(np.prod(ctx.shape(x)[1:], dtype=np.int64))
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
            target[target.index(-1)] = size // max(known, 1)
        if int(np.prod(target, dtype=np.int64)) != size:
            raise ModelFormatError(f"Reshape {self.name!r}: cannot reshape {ctx.shape(x)[1:]} to {tuple(target)}")
        return ctx.reshape(x, [-1, *target])


@register("Permute")
class Permute(Layer):
    def call(self, ctx, x):
        return ctx.transpose(x, [0, *(int(d) for d in self.config["dims"])])


@register("RepeatVector")
class RepeatVector(Layer):
    def call(self, ctx, x):
        n = int(self.config["n"])
        return ctx.op("Tile", ctx.expand_dims(x, 1), np.array([1, n, 1], np.int32))


@register("Rescaling")
class Rescaling(Layer):
    def call(self, ctx, x):
        scale = np.asarray(self.cfg("scale", 1.0), np.float32)
        offset = np.asarray(self.cfg("offset", 0.0), np.float32)
        if x.dtype != np.float32:
            x = ctx.op("Cast", x, DstT="float32")
        return ctx.add(ctx.mul(x, scale), offset)


@register("Embedding")
class Embedding(Layer):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        if self.config.get("mask_zero"):
            raise ModelFormatError(f"Embedding {self.name!r}: mask_zero=True (masking) is not supported")

    def build(self, shape):
        self.embeddings = self.add_weight(
            "embeddings", (int(self.config["input_dim"]), int(self.config["output_dim"])),
            regularizer=regularizer_from(self.config.get("embeddings_regularizer")),
            constraint=constraint_from(self.config.get("embeddings_constraint")))

    def call(self, ctx, x):
        if np.dtype(ctx.value(x).dtype).kind != "i":
            x = ctx.op("Cast", x, DstT="int32")
        return ctx.op("GatherV2", ctx.weight(self.embeddings), x, np.array(0, np.int32))


@register("Identity")
class Identity(Layer):
    def call(self, ctx, x, **_):
        return x
