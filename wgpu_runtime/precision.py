"""The arithmetic precision a graph model runs at (``load_model(..., precision=)``).

``"float32"`` (the default): every kernel computes in float32. ``"float16"``: the float32 matmuls
and convolutions run the workgroup-tiled kernels (matmul_tiled.wgsl, conv2d_tiled.wgsl) with
their tiles, products and accumulators in f16 (``enable f16;``): half the workgroup memory and,
on GPUs with fast half precision, more arithmetic per clock. Operands, weights and results stay
float32 in memory (converted as the tiles are staged) and every other op runs in float32, so
outputs are float32 with f16's rounding in the products: a relative error of about
``2**-11 * sqrt(K)`` for K-term sums, against ``2**-24 * sqrt(K)`` in float32. It needs the
adapter feature ``shader-f16``, and is never chosen by default.
"""
from __future__ import annotations

from .errors import PrecisionError

PRECISIONS = ("float32", "float16")
FEATURE = "shader-f16"
HALF_TEMPLATE = {"TC": "f16", "ENABLES": "enable f16;"}     # the tiled kernels' template under float16


def check(precision: str, device) -> str:
    """``precision``, validated for ``device`` (a wgpu_runtime Device): a PrecisionError (a
    ValueError) naming the choices, or the adapter that lacks ``shader-f16``."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float16" and FEATURE not in device.features:
        raise PrecisionError(f"precision='float16' needs the adapter feature {FEATURE!r}, which "
                         f"{device.name} does not have; use precision='float32'")
    return precision
