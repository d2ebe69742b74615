"""Keras metrics (numpy): a per-sample value averaged over every sample seen since the last reset
(Keras' MeanMetricWrapper), so an epoch's figure does not depend on how it was batched.

"accuracy" / "acc" resolve as Keras resolves them from the shapes of y_true and y_pred:
binary_accuracy for one output unit, sparse_categorical_accuracy when the labels have one rank
less (or a last dim of 1 against several classes), categorical_accuracy otherwise.
"""
from __future__ import annotations

import numpy as np


def _labels(y_true, y_pred):
    y = np.asarray(y_true)
    if y.ndim == y_pred.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    return y


def binary_accuracy(y_true, y_pred, threshold: float = 0.5):
    """Per sample: the fraction of outputs on the right side of ``threshold``."""
    return np.mean(np.asarray(y_true, np.float32) == (y_pred > threshold).astype(np.float32), axis=-1)


def categorical_accuracy(y_true, y_pred):
    """Per sample: 1 when the predicted class is the one-hot label's class."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    """Per sample: 1 when the predicted class is the integer label."""
    return (_labels(y_true, y_pred).astype(np.int64) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def _in_top_k(pred, target, k):
    """tf.math.in_top_k: the target's score is among the k largest (ties count as in)."""
    target_score = np.take_along_axis(pred, target[..., None], axis=-1)
    return (np.sum(pred > target_score, axis=-1) < k).astype(np.float32)


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5):
    """Per sample: 1 when the one-hot label's class is among the ``k`` highest scores."""
    return _in_top_k(y_pred, np.argmax(y_true, axis=-1), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5):
    """Per sample: 1 when the integer label is among the ``k`` highest scores."""
    return _in_top_k(y_pred, _labels(y_true, y_pred).astype(np.int64), k)


def mean_absolute_error(y_true, y_pred):
    """Per sample: mean(|y_pred - y_true|) over the last axis."""
    return np.mean(np.abs(y_pred - np.asarray(y_true, np.float32)), axis=-1)


def mean_squared_error(y_true, y_pred):
    """Per sample: mean((y_pred - y_true)**2) over the last axis."""
    return np.mean(np.square(y_pred - np.asarray(y_true, np.float32)), axis=-1)


class Metric:
    """A running mean of ``fn(y_true, y_pred)`` over samples."""

    def __init__(self, fn=None, name: str | None = None, **kwargs):
        self.fn = fn or getattr(self, "default_fn", None)
        self.kwargs = kwargs
        self.name = name or getattr(type(self), "default_name", None) or getattr(self.fn, "__name__", "metric")
        self.reset_state()

    def reset_state(self) -> None:
        """Forget every sample seen."""
        self.total = 0.0
        self.count = 0

    def update_state(self, y_true, y_pred) -> None:
        """Add a batch's per-sample values to the running mean."""
        values = np.asarray(self.fn(y_true, np.asarray(y_pred), **self.kwargs), np.float64)
        self.total += float(values.sum())
        self.count += int(values.size)

    def result(self) -> float:
        """The mean over every sample seen since the last reset (0.0 before any)."""
        return float(self.total / self.count) if self.count else 0.0


def _metric_class(fn, default_name):
    return type(default_name.title().replace("_", ""), (Metric,),
                {"default_fn": staticmethod(fn), "default_name": default_name,
                 "__doc__": f"The running mean of :func:`{fn.__name__}` (keyword arguments go to it)."})


BinaryAccuracy = _metric_class(binary_accuracy, "binary_accuracy")
CategoricalAccuracy = _metric_class(categorical_accuracy, "categorical_accuracy")
SparseCategoricalAccuracy = _metric_class(sparse_categorical_accuracy, "sparse_categorical_accuracy")
TopKCategoricalAccuracy = _metric_class(top_k_categorical_accuracy, "top_k_categorical_accuracy")
SparseTopKCategoricalAccuracy = _metric_class(sparse_top_k_categorical_accuracy, "sparse_top_k_categorical_accuracy")
MeanAbsoluteError = _metric_class(mean_absolute_error, "mean_absolute_error")
MeanSquaredError = _metric_class(mean_squared_error, "mean_squared_error")

_FUNCTIONS = {
    "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error,
    "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
}


def get(spec, y_true_shape=None, y_pred_shape=None) -> Metric:
    """A Metric from a name (with Keras' "accuracy" resolution from the shapes), a Metric, or a
    function ``fn(y_true, y_pred)`` of per-sample values."""
    if isinstance(spec, Metric):
        return spec
    if callable(spec):
        return Metric(spec)
    if not isinstance(spec, str):
        raise ValueError(f"cannot make a metric from {spec!r}")
    key = spec.lower()
    if key in ("accuracy", "acc"):
        pred_rank, true_rank = len(y_pred_shape), len(y_true_shape)
        if y_pred_shape[-1] == 1:
            fn = binary_accuracy
        elif true_rank < pred_rank or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1):
            fn = sparse_categorical_accuracy
        else:
            fn = categorical_accuracy
        return Metric(fn, name=spec)
    fn = _FUNCTIONS.get(key)
    if fn is None:
        raise ValueError(f"unknown metric {spec!r} (known: accuracy, acc, {', '.join(sorted(_FUNCTIONS))})")
    return Metric(fn, name=spec)
