"""Keras losses built from registry ops, so their gradients come from the autograd tape.

Each loss maps (y_true, y_pred) to one value per sample (Keras' per-sample loss: averaged over
the last axis where Keras does), then reduces with Keras' default "sum over batch size": the
mean over every per-sample value. Probabilities that come straight out of a Softmax (or Sigmoid)
op are not clipped and logged: as tf_keras and Keras 3 do, the crossentropy then uses the
logits that op was fed (numerically stabler, the same value otherwise).

    wr.losses.get("sparse_categorical_crossentropy")
    wr.losses.SparseCategoricalCrossentropy(from_logits=True)
"""
from __future__ import annotations

import numpy as np

from .autograd import Var

EPSILON = 1e-7          # Keras' backend epsilon (clipping of probabilities)


def _final_op(y_pred, op: str):
    """The input of ``op`` when y_pred was produced by it on the tape (else None)."""
    node = getattr(y_pred, "node", None)
    if isinstance(y_pred, Var) and node is not None and node.op == op:
        return node.inputs[0]
    return None


def _f32(y):
    y = np.asarray(y)
    return y if y.dtype == np.float32 else y.astype(np.float32)


class Loss:
    """Base class: subclasses implement ``per_sample``; calling the loss reduces it
    (``reduction``: "sum_over_batch_size" / "auto" = mean, "sum", or "none")."""

    name = "loss"

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size"):
        if name:
            self.name = name
        if reduction not in ("sum_over_batch_size", "auto", "sum", "none"):
            raise ValueError(f"reduction {reduction!r} is not supported")
        self.reduction = reduction

    def per_sample(self, ctx, y_true, y_pred):
        """One loss value per sample, built with ``ctx`` ops (so the tape can differentiate it)."""
        raise NotImplementedError

    def __call__(self, ctx, y_true, y_pred):
        """The reduced loss (a scalar tensor on ``ctx``)."""
        values = self.per_sample(ctx, y_true, y_pred)
        axes = list(range(len(ctx.shape(values))))
        if self.reduction == "sum":
            return ctx.sum(values, axes)
        if self.reduction == "none":
            return values
        return ctx.mean(values, axes)

    def get_config(self) -> dict:
        """The loss' settings, as Keras' ``get_config`` names them."""
        return {"name": self.name, "reduction": self.reduction}


class MeanSquaredError(Loss):
    """mean((y_pred - y_true)**2) over the last axis."""

    name = "mean_squared_error"

    def per_sample(self, ctx, y_true, y_pred):
        return ctx.mean(ctx.op("SquaredDifference", y_pred, _f32(y_true)), [-1])


class MeanAbsoluteError(Loss):
    """mean(|y_pred - y_true|) over the last axis."""

    name = "mean_absolute_error"

    def per_sample(self, ctx, y_true, y_pred):
        return ctx.mean(ctx.op("Abs", ctx.sub(y_pred, _f32(y_true))), [-1])


class Huber(Loss):
    """Quadratic for errors up to ``delta``, linear beyond, averaged over the last axis."""

    name = "huber_loss"

    def __init__(self, delta: float = 1.0, **kw):
        super().__init__(**kw)
        self.delta = float(delta)

    def per_sample(self, ctx, y_true, y_pred):
        err = ctx.sub(y_pred, _f32(y_true))
        abs_err = ctx.op("Abs", err)
        quad = ctx.mul(ctx.op("Square", err), 0.5)
        lin = ctx.sub(ctx.mul(abs_err, self.delta), 0.5 * self.delta ** 2)
        small = ctx.op("LessEqual", abs_err, np.float32(self.delta))
        return ctx.mean(ctx.op("SelectV2", small, quad, lin), [-1])


def _smooth(y_true, smoothing: float, classes: int) -> np.ndarray:
    y = _f32(y_true)
    return y if not smoothing else (y * (1 - smoothing) + smoothing / classes).astype(np.float32)


class CategoricalCrossentropy(Loss):
    """Crossentropy against one-hot (or soft) labels, with ``from_logits`` and ``label_smoothing``."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1, **kw):
        super().__init__(**kw)
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), int(axis)

    def _log_probs(self, ctx, y_pred):
        logits = y_pred if self.from_logits else _final_op(y_pred, "Softmax")
        if logits is not None:
            return ctx.over_axis("LogSoftmax", logits, self.axis)
        p = ctx.div(y_pred, ctx.sum(y_pred, [self.axis], keepdims=True))
        return ctx.op("Log", ctx.clip(p, EPSILON, 1 - EPSILON))

    def per_sample(self, ctx, y_true, y_pred):
        target = _smooth(y_true, self.label_smoothing, ctx.shape(y_pred)[self.axis])
        return ctx.op("Neg", ctx.sum(ctx.mul(self._log_probs(ctx, y_pred), target), [self.axis]))


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Crossentropy against integer class labels."""

    name = "sparse_categorical_crossentropy"

    def per_sample(self, ctx, y_true, y_pred):
        classes = ctx.shape(y_pred)[-1]
        labels = np.asarray(y_true)
        if labels.ndim == len(ctx.shape(y_pred)) and labels.shape[-1] == 1:
            labels = labels[..., 0]
        labels = labels.astype(np.int64)
        onehot = (labels[..., None] == np.arange(classes)).astype(np.float32)
        return ctx.op("Neg", ctx.sum(ctx.mul(self._log_probs(ctx, y_pred), onehot), [-1]))


class BinaryCrossentropy(Loss):
    """Crossentropy of independent 0/1 targets, with ``from_logits`` and ``label_smoothing``."""

    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1, **kw):
        super().__init__(**kw)
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), int(axis)

    def per_sample(self, ctx, y_true, y_pred):
        z = _f32(y_true)
        if self.label_smoothing:
            z = (z * (1 - self.label_smoothing) + 0.5 * self.label_smoothing).astype(np.float32)
        logits = y_pred if self.from_logits else _final_op(y_pred, "Sigmoid")
        if logits is not None:     # tf.nn.sigmoid_cross_entropy_with_logits: relu(x) - x z + log1p(exp(-|x|))
            x = logits
            loss = ctx.add(ctx.sub(ctx.op("Relu", x), ctx.mul(x, z)),
                           ctx.op("Softplus", ctx.op("Neg", ctx.op("Abs", x))))
        else:                      # tf_keras: -(z log(p + eps) + (1 - z) log(1 - p + eps)), p clipped
            p = ctx.clip(y_pred, EPSILON, 1 - EPSILON)
            pos = ctx.mul(ctx.op("Log", ctx.add(p, EPSILON)), z)
            neg = ctx.mul(ctx.op("Log", ctx.add(ctx.sub(1.0, p), EPSILON)), (1 - z).astype(np.float32))
            loss = ctx.op("Neg", ctx.add(pos, neg))
        return ctx.mean(loss, [self.axis])


_BY_NAME = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError, "meansquarederror": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError, "meanabsoluteerror": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "categorical_crossentropy": CategoricalCrossentropy, "categoricalcrossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "sparsecategoricalcrossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy, "binarycrossentropy": BinaryCrossentropy,
}


def get(spec) -> Loss:
    """A Loss from a name (Keras spellings), a Loss, or a function ``fn(ctx, y_true, y_pred)``
    returning per-sample values."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        cls = _BY_NAME.get(spec.lower())
        if cls is None:
            raise ValueError(f"unknown loss {spec!r} (known: {', '.join(sorted(k for k in _BY_NAME if '_' in k))})")
        loss = cls()
        loss.name = spec
        return loss
    if callable(spec):
        loss = Loss(name=getattr(spec, "__name__", "loss"))
        loss.per_sample = spec
        return loss
    raise ValueError(f"cannot make a loss from {spec!r}")
