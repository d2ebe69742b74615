"""Row-wise rules: the registry's ``rows`` field, and the pieces op modules share to write one.

A rule is ``rows(name, attrs, ins, outs) -> str | None`` for one planned node: ``ins`` / ``outs``
are its :class:`~wgpu_runtime.ops.registry.Tensor`s, whose device tensors (``value`` None) all
have the batch as dim 0. None: every output row is computed from the same input row alone;
else a short reason ("reduces over the batch"). Rules are conservative: when unsure, a reason.
graph/chunking.py asks them to decide whether a batch can be split into chunks.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .fused import residual_input
from .registry import Tensor

Rule = Callable[[str, dict, list[Tensor], list[Tensor]], "str | None"]

BROADCASTS = "broadcasts a batch tensor across rows"


def dev(ins: list[Tensor]) -> list[int]:
    """Positions of the inputs computed on the device (the batch-shaped ones)."""
    return [i for i, t in enumerate(ins) if t.value is None]


def rank(outs: list[Tensor]) -> int:
    """The largest rank of ``outs`` (0 when there are none)."""
    return max((len(t.shape) for t in outs), default=0)


def same_rank(ins: list[Tensor], outs: list[Tensor]) -> bool:
    """Every device input has the output's rank (none is broadcast across rows)."""
    r = rank(outs)
    return all(len(ins[i].shape) == r for i in dev(ins))


def first(t: Tensor):
    """The first element of a host input's value (an axis, a begin, a multiple...)."""
    return np.reshape(t.value, -1)[0]


def axis(v, r: int) -> int:
    """Axis ``v`` (None: 0) of a rank-``r`` tensor, made non-negative."""
    return int(v or 0) % max(1, r)


def residual(attrs: dict, ins: list[Tensor], outs: list[Tensor]) -> set[int]:
    """The input a fused conv / matmul epilogue adds per output element (``fused_ops`` with
    ``Add``: :func:`~wgpu_runtime.ops.fused.residual_input`), when it is a device tensor of the
    output's rank."""
    r = rank(outs)
    return {i for i in residual_input(attrs) if i < len(ins) and ins[i].value is None and len(ins[i].shape) == r}


def only_data(*allowed: int) -> Rule:
    """The rule of an op that works within rows when only the inputs at ``allowed`` (and a fused
    residual) come from the batch; another batch tensor (a filter, a table...) is read across rows."""
    def rule(name: str, attrs: dict, ins: list[Tensor], outs: list[Tensor]) -> str | None:
        if set(dev(ins)) <= set(allowed) | residual(attrs, ins, outs):
            return None
        return "reads a second tensor computed from the batch"
    return rule


DATA = only_data(0)     # the commonest: the batch comes in as input 0 alone


def row_wise(name: str, attrs: dict, ins: list[Tensor], outs: list[Tensor]) -> None:
    """The rule of an op that keeps rows whole (views, *Like): planning checks dim 0 is the batch."""
    return None


def per_element(name: str, attrs: dict, ins: list[Tensor], outs: list[Tensor]) -> str | None:
    """The rule of an element-wise op: row-wise unless a batch tensor of lower rank is broadcast."""
    return None if same_rank(ins, outs) else BROADCASTS


def never(reason: str) -> Rule:
    """The rule of an op that never computes rows independently, for ``reason``."""
    def rule(name: str, attrs: dict, ins: list[Tensor], outs: list[Tensor]) -> str:
        return reason
    rule.reason = reason
    return rule


def from_rank(least: int, reason: str) -> Rule:
    """The rule of an op working along its last axes: row-wise when the output has at least
    ``least`` dims (the batch is not among them), else ``reason``."""
    def rule(name: str, attrs: dict, ins: list[Tensor], outs: list[Tensor]) -> str | None:
        return None if rank(outs) >= least else reason
    return rule
