"""Faster float32 forwards for the ops that dominate a training step.

The registry's references favour clarity and float64 accumulation (they are the oracle for
tests and host folding). Training calls these hot ops thousands of times, so the tape runs them
here instead: the same functions of the same inputs in float32 (as TensorFlow computes them),
one BLAS call per filter tap instead of numpy's per-row matmul over strided windows. Anything
not listed, and any case these do not cover (another dtype, NCHW), falls back to the reference.
tests/test_gradients.py checks every one against its reference on all of the op's float cases.
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv_forward, data_format, geometry, padded, tap_slices
from ..ops.pool import pool_geometry


def _f32(*arrays) -> bool:
    return all(a.dtype == np.float32 for a in arrays)


def conv2d(attrs, x, f):
    if not _f32(x, f) or data_format(attrs) != "NHWC" or x.ndim != 4:
        return None
    g = geometry(attrs, x.shape, *f.shape[:2])
    return conv_forward(g, x, f)


def depthwise(attrs, x, f):
    if not _f32(x, f) or data_format(attrs) != "NHWC" or x.ndim != 4:
        return None
    g = geometry(attrs, x.shape, *f.shape[:2])
    xp = padded(x, g)
    c, m = f.shape[2:]
    y = np.zeros((g.n, g.oh, g.ow, c, m), np.float32)
    for ky in range(g.kh):
        for kx in range(g.kw):
            y += xp[tap_slices(g, ky, kx)][..., None] * f[ky, kx]
    return y.reshape(g.n, g.oh, g.ow, c * m)


def max_pool(attrs, x):
    if not _f32(x) or data_format(attrs) != "NHWC" or x.ndim != 4:
        return None
    g = pool_geometry(attrs, x.shape, 0)
    xp = padded(x, g, fill=-np.inf)
    y = None
    for ky in range(g.kh):
        for kx in range(g.kw):
            tap = xp[tap_slices(g, ky, kx)]
            y = tap.copy() if y is None else np.fmax(y, tap, out=y)
    return np.fmax(y, np.finfo(np.float32).min)     # as the reference (TF): NaN skipped, from the lowest float


def matmul(attrs, a, b, *extra):
    if extra or not _f32(a, b) or a.ndim != 2 or b.ndim != 2:
        return None
    a = a.T if attrs.get("transpose_a") else a
    b = b.T if attrs.get("transpose_b") else b
    return a @ b


FAST = {"Conv2D": conv2d, "DepthwiseConv2dNative": depthwise, "MaxPool": max_pool, "MatMul": matmul}


def forward(op: str, opdef, attrs: dict, values: list) -> list:
    """The op's outputs, through its fast float32 path when it has one that covers the inputs."""
    fast = FAST.get(op)
    if fast is not None:
        out = fast(attrs, *values)
        if out is not None:
            return [out]
    return opdef.run_reference(attrs, values)
