"""The copy engine: one launch of ``kernels/copy.wgsl`` -- a strided copy over an iteration shape,
with an optional per-dimension source rule (pad, tile, mirror). Many ops move data through it:
views that are not aliases, slices, padding, tiles, transposes, concatenation and splits
(transform.py), depth/space moves (image.py), layout changes around convolutions and pools
(conv.py, pool.py), Einsum's operands (matmul.py), broadcasts and reverses.

Copies move 4-byte words, so one pipeline per mode serves float32, int32 and bool. Dims are
simplified before launch (size-1 dims dropped, contiguous dims merged) and each invocation moves
a run of elements along the innermost dim (:func:`run_length`, per adapter kind).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import to_device_array
from .common import prod
from .launch import grid_1d
from .shapes import strides

__all__ = ["AFFINE", "PAD", "REFLECT", "SYMMETRIC", "TILE", "bits", "copy", "run_length", "view"]

# copy.wgsl modes: how the source coordinate follows from the iteration coordinate c
AFFINE, PAD, TILE, REFLECT, SYMMETRIC = range(5)


@dataclass
class _Dim:
    size: int     # iteration extent
    src: int      # source stride (elements; negative for reversed slices, 0 for broadcast)
    dst: int      # destination stride
    lo: int = 0   # PAD / REFLECT / SYMMETRIC: source coordinate = c - lo
    ext: int = 0  # source extent (PAD, TILE, REFLECT, SYMMETRIC)

    @property
    def identity(self) -> bool:       # the source coordinate is c, always in range, in every mode
        return self.lo == 0 and self.ext == self.size


def _simplify(dims: list[_Dim], mode: int) -> list[_Dim]:
    """Drop size-1 dims that read coordinate 0 and merge each identity dim into the dim outside it
    when both strides are contiguous across them: fewer dims, less index math per element."""
    out: list[_Dim] = []
    for d in dims:
        if d.size == 1 and d.lo == 0 and d.ext >= 1:
            continue
        if out:
            a = out[-1]
            if (d.identity and a.src == d.src * d.size and a.dst == d.dst * d.size
                    and (mode in (AFFINE, PAD, TILE) or a.identity)):
                out[-1] = _Dim(a.size * d.size, d.src, d.dst, a.lo * d.size, a.ext * d.size)
                continue
        out.append(d)
    return out


def run_length(ctx) -> int:
    """Elements per invocation along the innermost dim (the kernels' RUN), per adapter kind.
    CPU adapters divide integers one SIMD lane at a time, so locating an element costs far more
    than moving it: runs of 16 were 5-10x faster than single elements on lavapipe. On an H100
    (Vulkan) runs of 2 were fastest or near it for every copy measured (16M floats: 220-370 us
    against 330-590 us for 1 and 290-550 us for 4; a Relu of the same size took 164 us)."""
    return 16 if ctx.device.is_software else 2


def copy(ctx, src, dst, sizes, src_strides, *, src_base=0, dst_strides=None, dst_base=0, mode=AFFINE,
         lo=None, ext=None, fill=0) -> None:
    """One launch of copy.wgsl: for every index c of ``sizes``,
    dst[dst_base + c . dst_strides] = src[src_base + s(c) . src_strides] (see the kernel for s)."""
    n = prod(sizes)
    if n == 0:
        return
    rank = len(sizes)
    dst_strides = strides(sizes) if dst_strides is None else dst_strides
    lo = [0] * rank if lo is None else lo
    ext = list(sizes) if ext is None or mode == AFFINE else ext
    dims = _simplify([_Dim(*map(int, t)) for t in zip(sizes, src_strides, dst_strides, lo, ext)], mode)
    dims = dims or [_Dim(1, 0, 0, 0, 1)]
    if len(dims) > 8:
        raise ValueError(f"this copy needs {len(dims)} dimensions; at most 8 are supported")
    run = run_length(ctx)
    runs = -(-dims[-1].size // run)
    launches = n // dims[-1].size * runs
    ctx.dispatch("copy.wgsl", [src, dst], grid_1d(launches), constants={"MODE": mode, "RUN": run},
                 params={"n": launches, "rank": len(dims), "src_base": int(src_base), "dst_base": int(dst_base),
                         "fill": int(fill), "runs": runs,
                         "dims": [{"size": d.size, "dst": d.dst, "src": d.src, "lo": d.lo, "ext": d.ext}
                                  for d in dims]})


def view(ctx, sizes, src_strides, src_base=0, inp=0, out=0) -> None:
    """Output ``out`` (contiguous) reads input ``inp`` through strides: an alias when it is the
    input itself, else one affine copy."""
    x = ctx.inputs[inp]
    same_order = all(n == 1 or s == c for n, s, c in zip(sizes, src_strides, strides(sizes)))
    if src_base == 0 and prod(sizes) == x.size and same_order:
        ctx.alias(out, inp)
        return
    copy(ctx, x, ctx.device_output(out), sizes, src_strides, src_base=src_base)


def bits(value, dtype: str) -> int:
    """The 4-byte word a scalar of ``dtype`` is on the GPU (copy.wgsl's fill value)."""
    return int(to_device_array(np.asarray(value).reshape(()), dtype).view(np.uint32))
