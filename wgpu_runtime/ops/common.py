"""Small helpers every op family uses: dtype short names, shape rules and lowerings that many
ops share, host-value access. One copy here; op modules import what they need."""
from __future__ import annotations

import numpy as np

from ..dtypes import BOOL as B, DEVICE_DTYPES as ALL, FLOAT32 as F, INT32 as I, STRING as S  # noqa: F401 (short names)


def cdiv(a: int, b: int) -> int:
    """Ceiling division of non-negative ints (groups, tiles)."""
    return -(-a // b)


def prod(xs) -> int:
    """Product of ``xs`` as a Python int (1 for none)."""
    return int(np.prod(xs, dtype=np.int64))


def same_shape(attrs, ins):
    """Shape rule: one output with input 0's shape and dtype."""
    return [(ins[0].shape, ins[0].dtype)]


def alias_all(ctx) -> None:
    """Lowering: output k is input k (Identity, IdentityN, Reshape...): no launch."""
    for k in range(len(ctx.outputs)):
        ctx.alias(k, k)


def host_value(t, what: str) -> np.ndarray:
    """The host value of planning tensor ``t`` (an axis, a size...); a ValueError naming ``what``
    when it depends on the model's inputs (the dynamic executor then runs the op when it is known)."""
    if t.value is None:
        raise ValueError(f"{what} depends on the model's inputs: it must be known before the op runs "
                         "(a constant or shape arithmetic)")
    return t.value


# ----------------------------------------------------------------------------- case data
def quarters(shape, seed, levels=8) -> np.ndarray:
    """Multiples of 1/4 in [-levels/4, levels/4]: sums and products stay exact in float32, so
    any summation order (GPU, numpy, TensorFlow) gives the same result."""
    return (np.random.default_rng(seed).integers(-levels, levels + 1, size=shape) / 4).astype(np.float32)


def normal(shape, seed) -> np.ndarray:
    """Standard normal float32 values from ``seed``."""
    return np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)
