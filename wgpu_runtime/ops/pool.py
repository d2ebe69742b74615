"""MaxPool and AvgPool: ksize / strides / padding (SAME, VALID; EXPLICIT for MaxPool), NHWC or
NCHW, on kernels/pool_main.wgsl (8 output pixels x 4 channels per invocation; float32 input from
a texture copy where texture kernels come first, tiled.pool_texture). Windows leave padding
out: AvgPool divides by the number of elements inside the image, as TF does. Layouts and channel
counts other than NHWC with multiples of 4 go through strided copies, as for convolutions.

On the host (numpy references over conv.py's window views): MaxPool3D, AvgPool3D and
MaxPoolWithArgmax."""
from __future__ import annotations

import numpy as np

from .common import F, I, cdiv, normal
from .conv import (IntegerValued, data_format, finish_output, from_nhwc, geometry, hw_attr, nd_windows, nhwc_attrs,
                   nhwc_input, nhwc_reference, output_nhwc, reference_shape, spatial_attr, split_rows, tap_slices,
                   window_geometry, windows)
from . import tiled
from .launch import grid_1d
from .registry import Case, register
from .rows import DATA

_LOWEST_BITS = {"f32": 0xFF7FFFFF, "i32": 0x80000000}     # the lowest float32 (TF's start), the lowest int32
_MAX, _AVG = 0, 1


def pool_geometry(attrs, x_shape, mode: int):
    """The window geometry (conv.py's ``geometry``) of a MaxPool (mode 0) or AvgPool (mode 1)."""
    pad = attrs.get("padding")
    pad = pad.decode() if isinstance(pad, bytes) else pad
    if mode == _AVG and pad not in ("SAME", "VALID"):
        raise ValueError(f"AvgPool padding must be SAME or VALID, got {pad!r}")
    kh, kw = hw_attr(attrs, "ksize", data_format(attrs), default=None)
    if kh is None:
        raise ValueError("ksize is required")
    return geometry(attrs, x_shape, kh, kw, dilations=False)




def _shape(mode):
    def shape(attrs, ins):
        x = ins[0]
        if x.dtype not in ((F, I) if mode == _MAX else (F,)):
            raise TypeError(f"{'MaxPool' if mode == _MAX else 'AvgPool'} does not support {x.dtype}")
        g = pool_geometry(attrs, x.shape, mode)
        return [(from_nhwc((g.n, g.oh, g.ow, g.c), data_format(attrs)), x.dtype)]
    return shape


def _max_nhwc(attrs, x):
    """As TF's CPU MaxPool: from the lowest finite value, NaN skipped (a window of NaN or -inf
    gives the lowest float32)."""
    g = pool_geometry(attrs, x.shape, _MAX)
    lowest = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    y = np.full((g.n, g.oh, g.ow, g.c), lowest, x.dtype)
    for _, _, patch in windows(x, g, fill=lowest):
        y = np.fmax(y, patch)
    return y


def _avg_nhwc(attrs, x):
    g = pool_geometry(attrs, x.shape, _AVG)
    total = np.zeros((g.n, g.oh, g.ow, g.c), np.float64)
    count = np.zeros((1, g.oh, g.ow, 1), np.float64)
    for (_, _, patch), (_, _, ones) in zip(windows(x.astype(np.float64), g), windows(np.ones((1, g.h, g.w, 1)), g)):
        total += patch
        count += ones
    return (total / np.maximum(count, 1)).astype(x.dtype)


# ------------------------------------------------------------------------- gradient rules
def _pool_grad(mode):
    """MaxPool: each window's gradient goes to its first largest element (TF's MaxPoolGrad);
    AvgPool: shared by the window's elements inside the image."""
    def tiled_max(g, x, y, dy):
        """Windows that tile the image (stride = size, no padding): x viewed as
        [n, oh, kh, ow, kw, c]; the rows and columns past the last window get no gradient."""
        xr = x[:, :g.oh * g.kh, :g.ow * g.kw, :].reshape(g.n, g.oh, g.kh, g.ow, g.kw, g.c)
        dx = np.zeros(x.shape, np.float32)
        dxr = dx[:, :g.oh * g.kh, :g.ow * g.kw, :].reshape(g.n, g.oh, g.kh, g.ow, g.kw, g.c)
        taken = np.zeros(y.shape, bool)
        for ky in range(g.kh):
            for kx in range(g.kw):
                hit = (xr[:, :, ky, :, kx, :] == y) & ~taken
                dxr[:, :, ky, :, kx, :] = np.where(hit, dy, 0)
                taken |= hit
        return dx

    def grad_nhwc(attrs, x, y, dy):
        g = pool_geometry(attrs, x.shape, mode)
        if mode == _MAX and g.sh == g.kh and g.sw == g.kw and not (g.pt or g.pb or g.pl or g.pr):
            return tiled_max(g, x, y, dy)
        dxp = np.zeros((g.n, g.h + g.pt + g.pb, g.w + g.pl + g.pr, g.c), np.float32)
        if mode == _MAX:
            taps = list(windows(x, g, fill=-np.inf))
            best, first = taps[0][2].copy(), np.zeros(dy.shape, np.int32)   # first largest tap
            for t, (_, _, p) in enumerate(taps[1:], 1):
                bigger = p > best
                best[bigger] = p[bigger]
                first[bigger] = t
            for t, (ky, kx, _) in enumerate(taps):
                dxp[tap_slices(g, ky, kx)] += np.where(first == t, dy, 0)
        else:
            count = sum(p for _, _, p in windows(np.ones((1, g.h, g.w, 1), np.float32), g))
            share = dy / np.maximum(count, 1)
            for ky in range(g.kh):
                for kx in range(g.kw):
                    dxp[tap_slices(g, ky, kx)] += share
        return np.ascontiguousarray(dxp[:, g.pt:g.pt + g.h, g.pl:g.pl + g.w, :])

    def grad(attrs, ins, outs, dys):
        x = ins[0]
        if x.dtype.kind != "f":
            return [None]
        if data_format(attrs) == "NCHW":
            t = (0, 2, 3, 1)
            dx = grad_nhwc(nhwc_attrs(attrs), x.transpose(t), outs[0].transpose(t), dys[0].transpose(t))
            return [np.ascontiguousarray(dx.transpose(0, 3, 1, 2))]
        return [grad_nhwc(attrs, x, outs[0], dys[0])]
    return grad


def _lower(mode):
    def lower(ctx):
        x = ctx.inputs[0]
        g = pool_geometry(ctx.attrs, x.shape, mode)
        c4 = cdiv(g.c, 4)
        src = nhwc_input(ctx, 0, g, 4 * c4)
        y = output_nhwc(ctx, g.n, g.oh * g.ow, 4 * c4)
        owb = cdiv(g.ow, 8)
        n = g.n * g.oh * owb * c4
        t = ctx.wgsl_type(x.dtype)
        kernel = "pool.wgsl"
        reads = g.n * g.oh * g.ow * 4 * c4 * g.kh * g.kw
        if t == "f32" and tiled.pool_texture(ctx.device, g.n * g.h * g.w * c4, reads):
            # pool_main.wgsl reading a texture copy of the input, as the depthwise texture kernel
            src, kernel = ctx.texture_of(src, g.n * g.h * g.w * c4), "pool_texture.wgsl"
        passes = split_rows(g.kh, g.kw)
        for i, (ky0, ky1) in enumerate(passes):
            consts = {"MODE": mode, "ACCUMULATE": i > 0, "FLOAT": t == "f32"}
            consts.update({"LOWEST_BITS": _LOWEST_BITS[t]} if mode == _MAX else {"FINAL": i == len(passes) - 1})
            ctx.dispatch(kernel, [src, y], grid_1d(n),
                         params={"n": n, "c4": c4, "owb": owb, "kh": g.kh, "h": g.h, "w": g.w, "oh": g.oh,
                                 "ow": g.ow, "kw": g.kw, "stride_h": g.sh, "stride_w": g.sw, "pad_t": g.pt,
                                 "pad_l": g.pl, "ky0": ky0, "ky1": ky1},
                         template={"T": t}, constants=consts)
        finish_output(ctx, y, g.n, g.oh * g.ow, 4 * c4)
    return lower


def _pool(k, s, padding="VALID", **kw):
    return {"ksize": [1, k[0], k[1], 1], "strides": [1, s[0], s[1], 1], "padding": padding, **kw}


def _cases(dtype):
    return [
        Case([((1, 6, 7, 4), dtype)], _pool((2, 2), (2, 2)), note="2x2 stride 2 VALID"),
        Case([((2, 7, 9, 5), dtype)], _pool((3, 3), (2, 2), "SAME"), note="3x3 stride 2 SAME, odd sizes, 5 channels"),
        Case([((1, 5, 5, 8), dtype)], _pool((3, 3), (1, 1), "SAME"), note="3x3 stride 1 SAME"),
        Case([((1, 9, 10, 4), dtype)], _pool((3, 2), (2, 3), "SAME"), note="3x2 window, strides 2x3"),
        Case([((1, 3, 3, 4), dtype)], _pool((5, 5), (1, 1), "SAME"), note="window larger than the input"),
        Case([((1, 1, 1, 4), dtype)], _pool((1, 1), (1, 1)), note="size-1"),
        Case([((1, 19, 3, 4), dtype)], _pool((1, 3), (1, 1)), note="19 rows, one 8-pixel block partly out"),
    ]


_NAN = np.float32(np.nan)
_NAN_INPUT = np.array([[_NAN, 1, -2, _NAN], [3, _NAN, -np.inf, _NAN], [_NAN, _NAN, -np.inf, 0.5],
                       [_NAN, -1, -np.inf, -np.inf]], np.float32).reshape(1, 4, 4, 1).repeat(4, axis=3)
_MAX_CASES = _cases(F) + [
    Case([_NAN_INPUT], _pool((2, 2), (2, 2)), note="NaN skipped, all-NaN/-inf windows give the lowest float (TF CPU)"),
    Case([_NAN_INPUT], _pool((3, 3), (1, 1), "SAME"), note="NaN skipped, SAME"),
    Case([((1, 6, 7, 6), I)], _pool((2, 2), (2, 2), "SAME"), low=-100, high=100, note="int32"),
    Case([((1, 6, 7, 4), F)], _pool((3, 3), (2, 2), "EXPLICIT", explicit_paddings=[0, 0, 1, 1, 2, 0, 0, 0]),
         note="EXPLICIT"),
    Case([((1, 250, 250, 4), F)], _pool((250, 250), (1, 1)), note="62500-element window: row passes (loop cap)"),
]
_AVG_CASES = _cases(F) + [
    Case([_NAN_INPUT], _pool((2, 2), (2, 2)), note="NaN propagates (TF)"),
    IntegerValued([((1, 250, 250, 4), F)], _pool((250, 250), (1, 1)), low=0.0, high=9.0,
                  note="62500-element window: row passes (loop cap); integer valued, so the sum is exact"),
]
# NCHW: TF's CPU kernels lack it, so tests/test_ops_conv.py checks these against transposes
EXTRA_CASES = {
    "MaxPool": [Case([((1, 5, 6, 7), F)], {"ksize": [1, 1, 3, 3], "strides": [1, 1, 2, 2], "padding": "SAME",
                                           "data_format": "NCHW"}, note="NCHW")],
    "AvgPool": [Case([((2, 3, 7, 6), F)], {"ksize": [1, 1, 2, 3], "strides": [1, 1, 2, 1], "padding": "SAME",
                                           "data_format": "NCHW"}, note="NCHW")],
}

register("MaxPool", reference=nhwc_reference(_max_nhwc), shape=_shape(_MAX), lower=_lower(_MAX),
         cases=_MAX_CASES, dtypes=(F, I), grad=_pool_grad(_MAX), rows=DATA)
register("AvgPool", reference=nhwc_reference(_avg_nhwc), shape=_shape(_AVG), lower=_lower(_AVG),
         cases=_AVG_CASES, grad=_pool_grad(_AVG), rows=DATA, tol=(2e-6, "a float32 sum of the window (order differs from float64) and one division"))


# ------------------------------------------------- MaxPool3D, AvgPool3D, MaxPoolWithArgmax (host)
def _pool_nd(kind):
    def ref(attrs, x):
        rank = x.ndim - 2
        ks, st = spatial_attr(attrs, "ksize", rank), spatial_attr(attrs, "strides", rank)
        padding = str(attrs.get("padding") or "VALID")
        fill = -np.inf if kind == "max" else 0.0
        outs, views = nd_windows(x.astype(np.float64), ks, st, [1] * rank, padding, fill)
        if kind == "max":
            return np.max([v for _, v, _ in views], axis=0).astype(x.dtype)
        total = np.sum([v for _, v, _ in views], axis=0)
        count = np.sum([m for _, _, m in views], axis=0)[None, ..., None]
        return (total / count).astype(x.dtype)
    return ref


for _name, _kind in (("MaxPool3D", "max"), ("AvgPool3D", "avg")):
    register(_name, reference=_pool_nd(_kind), shape=reference_shape(_pool_nd(_kind)), rows=DATA,
             cases=[Case([normal((1, 4, 5, 6, 2), 5)], attrs={"ksize": [1, 2, 2, 3, 1], "strides": [1, 2, 2, 2, 1],
                                                             "padding": "SAME"}),
                    Case([normal((2, 3, 3, 4, 1), 6)], attrs={"ksize": [1, 2, 2, 2, 1], "strides": [1, 1, 1, 1, 1],
                                                             "padding": "VALID"})])


def _argmax_pool_ref(attrs, x):
    ks, st = spatial_attr(attrs, "ksize", 2), spatial_attr(attrs, "strides", 2)
    n, H, W, C = x.shape
    outs, views = nd_windows(x.astype(np.float64), ks, st, [1, 1], str(attrs.get("padding") or "VALID"), -np.inf)
    _, lo_h, _ = window_geometry(H, ks[0], st[0], 1, str(attrs.get("padding") or "VALID"))
    _, lo_w, _ = window_geometry(W, ks[1], st[1], 1, str(attrs.get("padding") or "VALID"))
    best = np.full((n, *outs, C), -np.inf)
    arg = np.zeros((n, *outs, C), np.int64)
    oy, ox = np.meshgrid(np.arange(outs[0]), np.arange(outs[1]), indexing="ij")
    for (dy, dx), v, _ in views:                 # window order: TF keeps the first maximum
        y, xx = oy * st[0] + dy - lo_h, ox * st[1] + dx - lo_w
        better = v > best
        flat = ((y * W + xx)[None, ..., None] * C + np.arange(C))
        if attrs.get("include_batch_in_index"):
            flat = flat + (np.arange(n) * H * W * C)[:, None, None, None]
        arg = np.where(better, flat, arg)
        best = np.where(better, v, best)
    return best.astype(x.dtype), arg.astype(np.int32)


def _argmax_pool_rows(name, attrs, ins, outs):
    return "indexes across the batch" if attrs.get("include_batch_in_index") else DATA(name, attrs, ins, outs)


register("MaxPoolWithArgmax", reference=_argmax_pool_ref, rows=_argmax_pool_rows,
         shape=lambda attrs, ins: [(s, d) for s, d in zip(
             [_argmax_pool_ref(attrs, np.zeros(ins[0].shape, np.float32))[0].shape] * 2, (F, I))],
         cases=[Case([normal((2, 5, 6, 3), 13)], attrs={"ksize": [1, 2, 2, 1], "strides": [1, 2, 2, 1],
                                                        "padding": "SAME", "Targmax": "int64"}),
                Case([normal((1, 4, 4, 2), 14)], attrs={"ksize": [1, 3, 3, 1], "strides": [1, 1, 1, 1], "padding": "VALID",
                                                        "include_batch_in_index": True, "Targmax": "int64"})])
