"""Weight regularizers (their penalties join the training loss, as Keras' ``model.losses``) and
weight constraints (applied after each optimizer step, as Keras does)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError


def _name_and_config(spec):
    if spec is None:
        return None, {}
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict):
        return spec.get("class_name"), spec.get("config") or {}
    raise ModelFormatError(f"cannot read {spec!r}")


@dataclass
class L1L2:
    l1: float = 0.0
    l2: float = 0.0

    def __call__(self, ctx, w):
        """The penalty as a scalar tensor: l1 * sum|w| + l2 * sum(w^2) (Keras' formula, no 1/2)."""
        axes = list(range(len(ctx.shape(w))))
        total = None
        if self.l1:
            total = ctx.mul(ctx.sum(ctx.op("Abs", w), axes), self.l1)
        if self.l2:
            t = ctx.mul(ctx.sum(ctx.op("Square", w), axes), self.l2)
            total = t if total is None else ctx.add(total, t)
        return total


def regularizer_from(spec):
    name, cfg = _name_and_config(spec)
    if name is None:
        return None
    key = name.lower().replace("_", "")
    if key in ("l1l2",):
        reg = L1L2(float(cfg.get("l1") or 0.0), float(cfg.get("l2") or 0.0))
    elif key == "l1":
        reg = L1L2(l1=float(cfg.get("l1", 0.01)))
    elif key == "l2":
        reg = L1L2(l2=float(cfg.get("l2", 0.01)))
    else:
        raise ModelFormatError(f"regularizer {name!r} is not supported (L1, L2, L1L2)")
    return reg if (reg.l1 or reg.l2) else None


@dataclass
class Constraint:
    kind: str
    max_value: float = 2.0
    min_value: float = 0.0
    rate: float = 1.0
    axis: object = 0

    def __call__(self, w: np.ndarray) -> np.ndarray:
        if self.kind == "nonneg":
            return w * (w >= 0)
        axis = tuple(self.axis) if isinstance(self.axis, (list, tuple)) else self.axis
        norms = np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))
        eps = np.float32(1e-7)     # Keras' backend epsilon
        if self.kind == "unitnorm":
            return (w / (eps + norms)).astype(np.float32)
        if self.kind == "maxnorm":
            desired = np.clip(norms, 0, self.max_value)
        else:   # minmaxnorm
            desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return (w * (desired / (eps + norms))).astype(np.float32)


def constraint_from(spec):
    name, cfg = _name_and_config(spec)
    if name is None:
        return None
    key = name.lower().replace("_", "")
    if key == "nonneg":
        return Constraint("nonneg")
    if key == "unitnorm":
        return Constraint("unitnorm", axis=cfg.get("axis", 0))
    if key == "maxnorm":
        return Constraint("maxnorm", max_value=float(cfg.get("max_value", 2.0)), axis=cfg.get("axis", 0))
    if key == "minmaxnorm":
        return Constraint("minmaxnorm", max_value=float(cfg.get("max_value", 1.0)),
                          min_value=float(cfg.get("min_value", 0.0)), rate=float(cfg.get("rate", 1.0)),
                          axis=cfg.get("axis", 0))
    raise ModelFormatError(f"constraint {name!r} is not supported (NonNeg, UnitNorm, MaxNorm, MinMaxNorm)")
