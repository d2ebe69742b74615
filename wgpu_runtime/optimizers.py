"""Optimizers with Keras' update rules (tf_keras 2.x "new" optimizers = Keras 3), in float32 numpy.

Each step: gradients are clipped (``clipnorm`` per gradient, ``global_clipnorm`` over all,
``clipvalue``), then weight decay (``variable -= variable * weight_decay * lr``) is applied, then
the update rule; ``iterations`` counts steps. ``learning_rate`` may be a float or a schedule
``fn(step) -> lr`` (e.g. :class:`ExponentialDecay`).

    opt = wr.optimizers.Adam(1e-3)
    opt.apply_gradients(zip(grads, weights))     # weights: Weight objects (updated in place)
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


class ExponentialDecay:
    """lr * decay_rate ** (step / decay_steps) (floored with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial, self.steps, self.rate, self.staircase = float(initial_learning_rate), float(decay_steps), \
            float(decay_rate), bool(staircase)

    def __call__(self, step):
        p = step / self.steps
        return self.initial * self.rate ** (np.floor(p) if self.staircase else p)


class Optimizer:
    """Base class: clipping, weight decay and the step count; subclasses implement ``update``."""

    name = "Optimizer"

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("only one of clipnorm, clipvalue and global_clipnorm may be set")
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0
        self.slots: dict[int, dict[str, np.ndarray]] = {}
        if name:
            self.name = name

    # -- helpers -----------------------------------------------------------------------------
    def current_lr(self) -> np.float32:
        """The learning rate for the current step (a schedule is called with ``iterations``)."""
        lr = self.learning_rate
        return F32(lr(self.iterations) if callable(lr) else lr)

    def slot(self, w, name: str, init: float = 0.0) -> np.ndarray:
        """The optimizer's state array ``name`` for weight ``w`` (created filled with ``init``)."""
        s = self.slots.setdefault(id(w), {})
        if name not in s:
            s[name] = np.full(w.value.shape, init, np.float32)
        return s[name]

    def _clip(self, grads):
        if self.clipvalue is not None:
            c = F32(self.clipvalue)
            grads = [np.clip(g, -c, c) for g in grads]
        if self.clipnorm is not None:
            c = F32(self.clipnorm)
            out = []
            for g in grads:
                n = np.sqrt(np.sum(np.square(g), dtype=np.float32))
                out.append(g * (c / n) if n > c else g)
            grads = out
        if self.global_clipnorm is not None:
            c = F32(self.global_clipnorm)
            n = np.sqrt(sum(np.sum(np.square(g), dtype=np.float32) for g in grads))
            if n > c:
                grads = [g * (c / n) for g in grads]
        return [np.asarray(g, np.float32) for g in grads]

    # -- API ---------------------------------------------------------------------------------
    def apply_gradients(self, pairs) -> None:
        """pairs: (gradient, weight) -- gradient None leaves the weight as it is."""
        pairs = [(g, w) for g, w in pairs if g is not None]
        if not pairs:
            return
        grads = self._clip([g for g, _ in pairs])
        lr = self.current_lr()
        if self.weight_decay:
            wd = F32(self.weight_decay)
            for _, w in pairs:
                w.value -= w.value * wd * lr
        step = self.iterations + 1
        for g, (_, w) in zip(grads, pairs):
            self.update(w, g, lr, step)
        self.iterations += 1

    def update(self, w, g: np.ndarray, lr: np.float32, step: int) -> None:
        """Apply the update rule to weight ``w`` (in place) for gradient ``g`` at step ``step`` (from 1)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The optimizer's settings, as Keras' ``get_config`` names them."""
        lr = self.learning_rate
        return {"name": self.name, "learning_rate": float(lr) if not callable(lr) else None,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum."""

    name = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kw):
        super().__init__(learning_rate, **kw)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update(self, w, g, lr, step):
        if self.momentum:
            mom = F32(self.momentum)
            m = self.slot(w, "momentum")
            m[...] = m * mom - g * lr
            w.value += (m * mom - g * lr) if self.nesterov else m
        else:
            w.value -= g * lr


class Adam(Optimizer):
    """Adam (Kingma and Ba), optionally AMSGrad."""

    name = "Adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kw):
        super().__init__(learning_rate, **kw)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = float(beta_1), float(beta_2), float(epsilon), bool(amsgrad)

    def update(self, w, g, lr, step):
        b1, b2 = F32(self.beta_1), F32(self.beta_2)
        alpha = lr * np.sqrt(F32(1) - b2 ** F32(step)) / (F32(1) - b1 ** F32(step))
        m, v = self.slot(w, "m"), self.slot(w, "v")
        m += (g - m) * (F32(1) - b1)
        v += (np.square(g) - v) * (F32(1) - b2)
        if self.amsgrad:
            vhat = self.slot(w, "vhat")
            np.maximum(vhat, v, out=vhat)
            v = vhat
        w.value -= (m * alpha) / (np.sqrt(v) + F32(self.epsilon))


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004, as Keras)."""

    name = "AdamW"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kw):
        super().__init__(learning_rate, weight_decay=weight_decay, **kw)


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum."""

    name = "RMSprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kw):
        super().__init__(learning_rate, **kw)
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), bool(centered)

    def update(self, w, g, lr, step):
        rho = F32(self.rho)
        vel = self.slot(w, "velocity")
        vel[...] = rho * vel + (F32(1) - rho) * np.square(g)
        if self.centered:
            avg = self.slot(w, "average_gradient")
            avg[...] = rho * avg + (F32(1) - rho) * g
            denom = vel - np.square(avg) + F32(self.epsilon)
        else:
            denom = vel + F32(self.epsilon)
        inc = lr * g / np.sqrt(denom)
        if self.momentum > 0:
            m = self.slot(w, "momentum")
            m[...] = F32(self.momentum) * m + inc
            w.value -= m
        else:
            w.value -= inc


class Adagrad(Optimizer):
    """Adagrad: per-weight learning rates from accumulated squared gradients."""

    name = "Adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kw):
        super().__init__(learning_rate, **kw)
        self.initial, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def update(self, w, g, lr, step):
        acc = self.slot(w, "accumulator", self.initial)
        acc += np.square(g)
        w.value -= lr * g / np.sqrt(acc + F32(self.epsilon))


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(spec) -> Optimizer:
    """An optimizer from a name ("adam", "sgd", ...; Keras defaults) or an Optimizer."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    raise ValueError(f"unknown optimizer {spec!r} (known: {', '.join(sorted(_BY_NAME))})")
