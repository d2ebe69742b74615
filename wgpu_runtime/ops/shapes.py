"""Shape arithmetic shared by op families (pure functions of shapes, no numpy data)."""
from __future__ import annotations

import numpy as np


def broadcast(*shapes) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ValueError(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast") from None


def strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= int(d)
    return out[::-1]


def broadcast_strides(shape, out_shape) -> list[int]:
    """Element strides of ``shape`` read as ``out_shape`` (0 along broadcast dims)."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(shape, out_shape, strides(shape))]


def vec8(values) -> list[int]:
    """Up to 8 u32 values as the two vec4 fields kernels read with at8()."""
    values = [int(v) for v in values]
    if len(values) > 8:
        raise ValueError(f"rank {len(values)} > 8 is not supported")
    return values + [0] * (8 - len(values))


def normalize_axis(axis: int, rank: int) -> int:
    if not -max(rank, 1) <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis % max(rank, 1)
