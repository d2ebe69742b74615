"""Training callbacks with Keras' hooks: History, EarlyStopping, LambdaCallback,
ReduceLROnPlateau, TerminateOnNaN."""
from __future__ import annotations

import logging
import math

import numpy as np

from .io_utils import print_msg

logger = logging.getLogger(__name__)


class Callback:
    """Base class of training callbacks: override the hooks you need. ``self.model`` is the model
    being trained (set ``self.model.stop_training = True`` to stop), ``self.params`` fit's settings."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        """Called by fit with the model being trained."""
        self.model = model

    def set_params(self, params: dict) -> None:
        """Called by fit with its settings (epochs, steps, verbose)."""
        self.params = params

    def on_train_begin(self, logs=None):
        """At the start of fit."""

    def on_train_end(self, logs=None):
        """At the end of fit."""

    def on_epoch_begin(self, epoch, logs=None):
        """At the start of epoch ``epoch`` (from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """At the end of an epoch; ``logs``: the epoch's loss and metrics (``val_`` ones too)."""

    def on_train_batch_begin(self, batch, logs=None):
        """Before training step ``batch`` (from 0 in each epoch); Keras' hook (fit does not call it yet)."""

    def on_train_batch_end(self, batch, logs=None):
        """After a training step; ``logs``: the running loss and metrics of the epoch."""


class History(Callback):
    """``history.history["loss"]``: one value per epoch; ``history.epoch``: epoch numbers."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _monitor_op(mode: str, monitor: str):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode {mode!r} must be auto, min or max")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.startswith("fmeasure") or "auc" in monitor) else "min"
    return np.greater if mode == "max" else np.less


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs
    (tf_keras' rules, including ``baseline``, ``restore_best_weights`` and ``start_from_epoch``)."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self.monitor_op = _monitor_op(mode, monitor)
        self.min_delta = abs(min_delta) if self.monitor_op == np.greater else -abs(min_delta)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = np.inf if self.monitor_op == np.less else -np.inf
        self.best_weights = None
        self.best_epoch = 0

    def _improved(self, value, reference) -> bool:
        return bool(self.monitor_op(value - self.min_delta, reference))

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            available = ", ".join(sorted(logs or {}))
            logger.warning("EarlyStopping: metric %r is not available (available: %s)", self.monitor, available)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()     # if no epoch ever improves
            self.best_epoch = epoch
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:   # as tf_keras 2.19: at the end
            if self.verbose:
                print_msg(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class LambdaCallback(Callback):
    """A callback from plain functions, one per hook (``on_epoch_end=lambda epoch, logs: ...``)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_batch_begin=None,
                 on_train_batch_end=None, on_train_begin=None, on_train_end=None):
        super().__init__()
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_batch_begin", on_train_batch_begin), ("on_train_batch_end", on_train_batch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None:
                setattr(self, name, fn)


class ReduceLROnPlateau(Callback):
    """Multiply the optimizer's learning rate by ``factor`` when ``monitor`` has not improved by
    ``min_delta`` for ``patience`` epochs (then wait ``cooldown`` epochs; never below ``min_lr``)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.cooldown, self.min_lr, self.min_delta = cooldown, min_lr, min_delta
        self.monitor_op = _monitor_op(mode, monitor)

    def on_train_begin(self, logs=None):
        self.best = np.inf if self.monitor_op == np.less else -np.inf
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        opt = self.model.optimizer
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op == np.less:
            better = current < self.best - self.min_delta
        else:
            better = current > self.best + self.min_delta
        if better:
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and float(opt.learning_rate) > self.min_lr:
                opt.learning_rate = max(float(opt.learning_rate) * self.factor, self.min_lr)
                if self.verbose:
                    print_msg(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {opt.learning_rate:g}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (math.isnan(loss) or math.isinf(loss)):
            print_msg(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True
