"""compile / fit / evaluate for LayersModel, as Keras runs them.

A training step runs the layers on the CPU through the autograd tape (training mode: dropout,
batch statistics), adds the regularization penalties to the compiled loss, back-propagates,
lets the optimizer update the weights in place, applies weight constraints and the layers'
non-trainable updates (moving statistics), and marks the GPU copy stale (it is rewritten before
the next GPU inference). Logged figures are Keras': the epoch's ``loss`` is the batch losses'
mean weighted by batch size, metrics are means over the epoch's samples, validation runs in
inference mode (on the GPU by default) after each epoch and is logged with a ``val_`` prefix.
Steps run with numpy's OpenBLAS held to ``blas_threads`` threads (see autograd/blas.py).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np

from .. import callbacks as callbacks_mod
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers
from ..autograd import Var, backward, blas
from ..errors import InputError
from .ctx import EagerCtx
from .model import steps_for
from .progress import PassProgress, Progress, resolve_verbose


@dataclass
class Compiled:
    losses: list                # per output: Loss or None
    loss_weights: list[float]
    metric_specs: list[list]    # per output: metric specs


def _per_output(spec, names, what):
    if isinstance(spec, dict):
        unknown = set(spec) - set(names)
        if unknown:
            raise ValueError(f"{what} for unknown outputs {sorted(unknown)} (outputs: {names})")
        return [spec.get(n) for n in names]
    if isinstance(spec, (list, tuple)) and len(names) > 1 and len(spec) == len(names) \
            and not (what == "metrics" and all(isinstance(s, str) for s in spec)):
        return list(spec)
    return [spec] * len(names)


def compile_model(model, optimizer, loss, metrics, loss_weights) -> None:
    names = model.output_names
    model.optimizer = optimizers.get(optimizer)
    losses = [None if l is None else losses_mod.get(l) for l in _per_output(loss, names, "loss")]
    if all(l is None for l in losses):
        raise ValueError("compile() needs a loss")
    weights = _per_output(loss_weights if loss_weights is not None else 1.0, names, "loss_weights")
    specs = _per_output(metrics or [], names, "metrics")
    specs = [[] if s is None else (list(s) if isinstance(s, (list, tuple)) else [s]) for s in specs]
    model.compiled = Compiled(losses, [float(w) for w in weights], specs)


def check_targets(model, y) -> list[np.ndarray]:
    names = model.output_names
    if isinstance(y, dict):
        missing = [n for n in names if n not in y]
        if missing:
            raise InputError(f"missing targets for outputs {missing}")
        ys = [y[n] for n in names]
    elif isinstance(y, (list, tuple)) and (len(names) > 1 or (len(y) == 1 and isinstance(y[0], np.ndarray))):
        ys = list(y)
    else:
        ys = [y]
    if len(ys) != len(names):
        raise InputError(f"model has {len(names)} outputs, got {len(ys)} target arrays")
    return [np.asarray(a) for a in ys]


class _Tracker:
    """Running loss means (weighted by batch size) and metric states for one pass over data."""

    def __init__(self, model, prefix=""):
        self.model, self.prefix = model, prefix
        self.total = 0.0
        self.count = 0
        self.out_losses = [0.0] * len(model.output_names)
        self.metrics = None

    def _make_metrics(self, ys, outs):
        comp = self.model.compiled
        self.metrics = []
        for specs, yt, yp in zip(comp.metric_specs, ys, outs):
            ms = []
            for s in specs:
                m = metrics_mod.get(s, np.shape(yt), np.shape(yp))
                ms.append(copy.deepcopy(m) if m is s else m)
                ms[-1].reset_state()
            self.metrics.append(ms)

    def update(self, n, total, parts, ys, outs):
        self.total += total * n
        self.count += n
        for i, p in enumerate(parts):
            if p is not None:
                self.out_losses[i] += p * n
        if self.metrics is None:
            self._make_metrics(ys, outs)
        for ms, yt, yp in zip(self.metrics, ys, outs):
            for m in ms:
                m.update_state(yt, yp)

    def logs(self) -> dict:
        names = self.model.output_names
        n = max(self.count, 1)
        logs = {f"{self.prefix}loss": self.total / n}
        if len(names) > 1:
            for name, l, lf in zip(names, self.out_losses, self.model.compiled.losses):
                if lf is not None:
                    logs[f"{self.prefix}{name}_loss"] = l / n
        for name, ms in zip(names, self.metrics or []):
            for m in ms:
                key = m.name if len(names) == 1 else f"{name}_{m.name}"
                logs[f"{self.prefix}{key}"] = m.result()
        return logs


def _loss_terms(model, ctx, ys, outs):
    comp = model.compiled
    total, parts = None, []
    for lf, w, yt, yp in zip(comp.losses, comp.loss_weights, ys, outs):
        if lf is None:
            parts.append(None)
            continue
        l = lf(ctx, yt, yp)
        parts.append(float(ctx.value(l)))
        term = l if w == 1.0 else ctx.mul(l, w)
        total = term if total is None else ctx.add(total, term)
    for w in model.weights:
        if w.regularizer is not None:
            total = ctx.add(total, w.regularizer(ctx, ctx.weight(w)))
    for extra in getattr(ctx, "losses", []):
        total = ctx.add(total, extra)
    return total, parts


def train_step(model, xs, ys, tracker: _Tracker | None = None) -> dict:
    """One optimizer step on a batch (``xs`` checked by ``model._feeds``, ``ys`` by ``check_targets``)."""
    if model.compiled is None:
        raise RuntimeError("compile() the model before training it")
    trainable = model.trainable_weights
    ctx = EagerCtx(training=True, track={id(w) for w in trainable}, rng=model._rng)
    out = model.net(ctx, *xs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    total, parts = _loss_terms(model, ctx, ys, outs)
    backward(total)
    model.optimizer.apply_gradients((ctx.grad_of(w), w) for w in trainable)
    for w in trainable:
        if w.constraint is not None:
            w.value[...] = w.constraint(w.value)
    for w, value in ctx.updates:
        w.value[...] = value
    model.mark_weights_changed()
    tracker = tracker or _Tracker(model)
    tracker.update(xs[0].shape[0], float(ctx.value(total)), parts, ys, [ctx.value(o) for o in outs])
    return tracker.logs()


def evaluate(model, x, y, batch_size=None, device="gpu", prefix="", verbose=0) -> dict:
    """Loss and metrics in inference mode over all of (x, y); ``verbose`` as Keras'
    (layers/progress.py: the default 0 here is fit's validation pass, silent as in Keras)."""
    if model.compiled is None:
        raise RuntimeError("compile() the model before evaluating it")
    if device not in ("gpu", "cpu"):
        raise ValueError(f"device must be 'gpu' or 'cpu', got {device!r}")
    xs, ys = model._feeds(x), check_targets(model, y)
    progress = PassProgress(verbose, steps_for(xs[0].shape[0], batch_size) if device == "gpu" else 1)
    t0 = time.perf_counter()
    try:
        logs = _evaluate(model, xs, ys, batch_size, device, prefix, progress)
    except BaseException:
        progress.abort()
        raise
    progress.end(time.perf_counter() - t0, logs)
    return logs


def _evaluate(model, xs, ys, batch_size, device, prefix, progress) -> dict:
    ctx = EagerCtx(training=False)
    if device == "gpu":
        _, traced = model.gpu_model(xs)
        wants_logits = [lg is not None and lf is not None for lg, lf in zip(traced.logits, model.compiled.losses)]
        fetch = [lg[1] if want else name for want, lg, name in zip(wants_logits, traced.logits, traced.outputs)]
        arrays = model.run_gpu(xs, fetch, batch_size, on_batch=progress.batch_end)
        # the final Softmax/Sigmoid runs here, so the loss sees its logits as it does in training
        outs = [ctx.op(lg[0], Var(a, requires_grad=True)) if want else a
                for want, lg, a in zip(wants_logits, traced.logits, arrays)]
    else:
        out = model.net(ctx, *xs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        progress.batch_end(0)
    total, parts = _loss_terms(model, ctx, ys, outs)
    tracker = _Tracker(model, prefix)
    tracker.update(xs[0].shape[0], float(ctx.value(total)), parts, ys, [ctx.value(o) for o in outs])
    return tracker.logs()


def fit(model, x, y, batch_size=32, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, initial_epoch=0, seed=None, blas_threads=1):
    if model.compiled is None:
        raise RuntimeError("compile() the model before fit()")
    resolve_verbose(verbose)          # a bad value fails before any training
    with blas.limit(blas_threads):
        return _fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                    shuffle, initial_epoch, seed)


def _fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
         initial_epoch, seed):
    xs, ys = model._feeds(x), check_targets(model, y)
    n = xs[0].shape[0]
    if any(a.shape[0] != n for a in xs + ys):
        raise InputError(f"inputs and targets differ in length: {[a.shape[0] for a in xs + ys]}")
    val = None
    if validation_data is not None:
        val = (validation_data[0], validation_data[1])
    elif validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        split = int(n * (1.0 - validation_split))     # Keras: the last samples, before any shuffling
        val = ([a[split:] for a in xs], [a[split:] for a in ys])
        xs, ys, n = [a[:split] for a in xs], [a[:split] for a in ys], split
    if n == 0:
        raise InputError("no training samples")
    steps = -(-n // batch_size)
    history = callbacks_mod.History()
    cbs = [history] + list(callbacks or [])
    for cb in cbs:
        cb.set_model(model)
        cb.set_params({"epochs": epochs, "steps": steps, "verbose": verbose})
    rng = np.random.default_rng(seed) if seed is not None else model._rng
    if seed is not None:
        model._rng = np.random.default_rng(seed + 1)
    model.stop_training = False
    for cb in cbs:
        cb.on_train_begin()
    with Progress(verbose, epochs, steps) as progress:
        for epoch in range(initial_epoch, epochs):
            t0 = time.perf_counter()
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            progress.epoch_begin(epoch)
            order = rng.permutation(n) if shuffle else None
            tracker = _Tracker(model)
            done = 0
            for step in range(steps):
                sl = slice(step * batch_size, (step + 1) * batch_size)
                idx = sl if order is None else order[sl]
                logs = train_step(model, [a[idx] for a in xs], [a[idx] for a in ys], tracker)
                done = step + 1
                progress.batch_end(step, logs)
                for cb in cbs:
                    cb.on_train_batch_end(step, logs)
                if model.stop_training:
                    break
            logs = tracker.logs()
            if val is not None:
                vx, vy = val
                logs.update(evaluate(model, vx, vy, prefix="val_"))
            progress.epoch_end(epoch, logs, time.perf_counter() - t0, done)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    for cb in cbs:
        cb.on_train_end()
    model.history = history
    return history
