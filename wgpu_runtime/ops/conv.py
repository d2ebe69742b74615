"""Convolutions: Conv2D, _FusedConv2D, DepthwiseConv2dNative, FusedDepthwiseConv2dNative and
Conv2DBackpropInput, with SAME / VALID / EXPLICIT padding, strides, dilations, NHWC or NCHW.

Conv2D and Conv2DBackpropInput run as implicit matmuls on kernels/conv2d_main.wgsl (4 output
pixels x 32 output channels per invocation; on llvmpipe the filter tile is shared through
subgroup broadcasts), depthwise convolutions on kernels/depthwise.wgsl (8 output pixels x 4
channels per invocation). Kernels see NHWC with channel counts padded to multiples of 4; other
layouts and counts go through one strided copy (strided_copy.copy) on each side. Filters are
weights, repacked on the host once per model. A reduction longer than llvmpipe's loop cap is
split into passes that accumulate into the output. On llvmpipe / lavapipe the "texture" variants
(kernels/conv2d_texture*.wgsl, depthwise_texture.wgsl: the same products with input and filter
read as textures, wgpu_runtime/textures.py) run instead; they serve 2-D matmuls with a weight
operand too (texture_matmul). Where workgroup memory is fast (real GPUs), the tiled variants of
ops/tiled.py (kernels/conv2d_tiled.wgsl, depthwise_tiled.wgsl) run on the same packed filters
instead. The variant is chosen per adapter and shape (wgpu_runtime.tuning).

On the host (numpy references over strided window views, any rank): Conv3D, TF.js's Conv1D,
Dilation2D; DepthwiseConv2d is TF.js's name for DepthwiseConv2dNative. The window helpers here
serve pool.py's host pools too.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace

import numpy as np

from .. import precision
from . import conv_uniform, fused, tiled
from .common import F, cdiv, normal
from .launch import WORKGROUP, grid_1d, grid_z
from .registry import REGISTRY, Case, register
from .rows import DATA, only_data
from .shapes import broadcast_strides
from .strided_copy import PAD, copy

LOOP_BUDGET = 60000   # loop iterations one invocation may run: launch.LOOP_CAP (llvmpipe) less a margin


# ------------------------------------------------------------------------------------ geometry
@dataclass
class Geometry:
    """A 2-D sliding window over NHWC ``x``: what convolutions and pools share."""
    n: int
    h: int
    w: int
    c: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pb: int
    pl: int
    pr: int
    oh: int
    ow: int


def data_format(attrs) -> str:
    fmt = attrs.get("data_format") or "NHWC"
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format {fmt!r} is not supported (NHWC or NCHW)")
    return fmt


def to_nhwc(shape, fmt: str) -> tuple[int, ...]:
    n, a, b, c = shape
    return (n, b, c, a) if fmt == "NCHW" else (n, a, b, c)


def from_nhwc(shape, fmt: str) -> tuple[int, ...]:
    n, h, w, c = shape
    return (n, c, h, w) if fmt == "NCHW" else (n, h, w, c)


def hw_attr(attrs, name: str, fmt: str, default=1) -> tuple[int, int]:
    """(rows, cols) of a 4-element attr in data_format order; batch and channel entries must be 1."""
    v = attrs.get(name)
    if not v:
        return default, default
    v = [int(e) for e in v]
    if len(v) != 4:
        raise ValueError(f"{name} must have 4 entries, got {v}")
    n, h, w, c = to_nhwc(v, fmt)
    if n != 1 or c != 1:
        raise ValueError(f"{name} {v}: only the spatial entries may differ from 1")
    if h < 1 or w < 1:
        raise ValueError(f"{name} {v} must be positive")
    return h, w


def _padding(attrs, fmt: str, size: int, k: int, s: int, d: int, axis: int) -> tuple[int, int, int]:
    """(pad before, pad after, output size) along one spatial axis, as TF computes them."""
    pad = attrs.get("padding") or "VALID"
    pad = pad.decode() if isinstance(pad, bytes) else pad
    eff = (k - 1) * d + 1
    if pad == "SAME":
        out = cdiv(size, s)
        total = max((out - 1) * s + eff - size, 0)
        before, after = total // 2, total - total // 2
    elif pad == "VALID":
        before = after = 0
    elif pad == "EXPLICIT":
        e = [int(v) for v in (attrs.get("explicit_paddings") or [])]
        if len(e) != 8:
            raise ValueError(f"EXPLICIT padding needs 8 explicit_paddings, got {e}")
        pairs = to_nhwc([e[0:2], e[2:4], e[4:6], e[6:8]], fmt)
        if pairs[0] != [0, 0] or pairs[3] != [0, 0]:
            raise ValueError(f"explicit_paddings {e}: batch and channel paddings must be 0")
        before, after = pairs[axis]
        if before < 0 or after < 0:
            raise ValueError(f"explicit_paddings {e} must be non-negative")
    else:
        raise ValueError(f"padding {pad!r} is not supported (SAME, VALID or EXPLICIT)")
    if pad != "SAME":
        span = size + before + after - eff
        if span < 0:
            raise ValueError(f"a window of {eff} does not fit an input of {size} padded by "
                             f"({before}, {after})")
        out = span // s + 1
    return before, after, out


def geometry(attrs, x_shape, kh: int, kw: int, dilations: bool = True) -> Geometry:
    fmt = data_format(attrs)
    if len(x_shape) != 4:
        raise ValueError(f"input must have rank 4, got shape {tuple(x_shape)}")
    n, h, w, c = to_nhwc(x_shape, fmt)
    sh, sw = hw_attr(attrs, "strides", fmt)
    dh, dw = hw_attr(attrs, "dilations", fmt) if dilations else (1, 1)
    pt, pb, oh = _padding(attrs, fmt, h, kh, sh, dh, 1)
    pl, pr, ow = _padding(attrs, fmt, w, kw, sw, dw, 2)
    return Geometry(n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, oh, ow)


def windows(x: np.ndarray, g: Geometry, fill=0.0):
    """numpy: yields (ky, kx, x[:, oy*sh + ky*dh - pt, ox*sw + kx*dw - pl, :]) for every tap."""
    xp = np.pad(x, ((0, 0), (g.pt, g.pb), (g.pl, g.pr), (0, 0)), constant_values=fill)
    for ky in range(g.kh):
        for kx in range(g.kw):
            y0, x0 = ky * g.dh, kx * g.dw
            yield ky, kx, xp[:, y0:y0 + (g.oh - 1) * g.sh + 1:g.sh, x0:x0 + (g.ow - 1) * g.sw + 1:g.sw, :]


def nhwc_attrs(attrs) -> dict:
    """attrs with data_format NHWC and the 4-entry attrs (strides, dilations, ksize,
    explicit_paddings) reordered to match."""
    if data_format(attrs) == "NHWC":
        return attrs
    out = {**attrs, "data_format": "NHWC"}
    for name in ("strides", "dilations", "ksize"):
        if attrs.get(name):
            n, c, h, w = attrs[name]
            out[name] = [n, h, w, c]
    e = attrs.get("explicit_paddings")
    if e:
        out["explicit_paddings"] = list(e[0:2]) + list(e[4:8]) + list(e[2:4])
    return out


def nhwc_reference(fn):
    """Wraps fn(attrs, x_nhwc, *rest) -> y_nhwc (rest after the input: filters, fused args) for
    data_format NCHW."""
    def reference(attrs, x, *rest):
        if data_format(attrs) == "NCHW":
            y = fn(nhwc_attrs(attrs), x.transpose(0, 2, 3, 1), *rest)
            return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        return fn(attrs, x, *rest)
    return reference


# ----------------------------------------------------------------------------------- references
def _conv_nhwc(attrs, x, f):
    g = geometry(attrs, x.shape, *f.shape[:2])
    y = np.zeros((g.n, g.oh, g.ow, f.shape[3]), np.float64)
    for ky, kx, patch in windows(x.astype(np.float64), g):
        y += patch @ f[ky, kx].astype(np.float64)
    return y.astype(np.float32)


def _depthwise_nhwc(attrs, x, f):
    g = geometry(attrs, x.shape, *f.shape[:2])
    c, m = f.shape[2:]
    y = np.zeros((g.n, g.oh, g.ow, c, m), np.float64)
    for ky, kx, patch in windows(x.astype(np.float64), g):
        y += patch[..., None] * f[ky, kx].astype(np.float64)
    return y.reshape(g.n, g.oh, g.ow, c * m).astype(np.float32)


def _backprop_geometry(attrs, sizes, f_shape, dy_shape) -> Geometry:
    g = geometry(attrs, [int(s) for s in sizes], *f_shape[:2])
    fmt = data_format(attrs)
    want = from_nhwc((g.n, g.oh, g.ow, f_shape[3]), fmt)
    if tuple(dy_shape) != want:
        raise ValueError(f"out_backprop has shape {tuple(dy_shape)}, but a convolution of input_sizes "
                         f"{[int(s) for s in sizes]} with this filter gives {want}")
    return g


def _backprop_input_ref(attrs, sizes, f, dy):
    fmt = data_format(attrs)
    g = _backprop_geometry(attrs, sizes, f.shape, dy.shape)
    dy = (dy.transpose(0, 2, 3, 1) if fmt == "NCHW" else dy).astype(np.float64)
    dx = np.zeros((g.n, g.h + g.pt + g.pb, g.w + g.pl + g.pr, g.c), np.float64)
    for ky in range(g.kh):
        for kx in range(g.kw):
            y0, x0 = ky * g.dh, kx * g.dw
            dx[:, y0:y0 + (g.oh - 1) * g.sh + 1:g.sh, x0:x0 + (g.ow - 1) * g.sw + 1:g.sw, :] += \
                dy @ f[ky, kx].astype(np.float64).T
    dx = dx[:, g.pt:g.pt + g.h, g.pl:g.pl + g.w, :].astype(np.float32)
    return np.ascontiguousarray(dx.transpose(0, 3, 1, 2)) if fmt == "NCHW" else dx


def _fused(ref):
    nhwc = nhwc_reference(lambda attrs, x, f, *extra: fused.reference_epilogue(attrs, ref(attrs, x, f), list(extra)))

    def reference(attrs, x, f, *extra):
        extra = list(extra)
        for i in fused.residual_input(attrs):      # NCHW: the residual goes NHWC with the rest
            if data_format(attrs) == "NCHW" and i - 2 < len(extra):
                e = np.asarray(extra[i - 2])
                extra[i - 2] = e.reshape((1,) * (4 - e.ndim) + e.shape).transpose(0, 2, 3, 1)
        return nhwc(attrs, x, f, *extra)
    return reference


# ------------------------------------------------------------------------- gradient rules
# grad(attrs, inputs, outputs, dys) -> one gradient per input (see wgpu_runtime/autograd).
# Computed in float32 with one matmul per filter tap (BLAS over every output pixel at once).
def tap_slices(g: Geometry, ky: int, kx: int):
    """The padded input's [:, rows, cols, :] that tap (ky, kx) reads for every output pixel."""
    y0, x0 = ky * g.dh, kx * g.dw
    return (slice(None), slice(y0, y0 + (g.oh - 1) * g.sh + 1, g.sh), slice(x0, x0 + (g.ow - 1) * g.sw + 1, g.sw))


def padded(x: np.ndarray, g: Geometry, fill=0.0) -> np.ndarray:
    if not (g.pt or g.pb or g.pl or g.pr):
        return x
    return np.pad(x, ((0, 0), (g.pt, g.pb), (g.pl, g.pr), (0, 0)), constant_values=fill)


def _unpadded(xp: np.ndarray, g: Geometry) -> np.ndarray:
    return np.ascontiguousarray(xp[:, g.pt:g.pt + g.h, g.pl:g.pl + g.w, :])


_COLUMNS_BYTES = 64 << 20   # im2col up to this size (one GEMM over all taps), else one GEMM per tap


def _columns(xp: np.ndarray, g: Geometry) -> np.ndarray | None:
    """[pixels, taps * channels]: every output pixel's window (im2col), or None when too big."""
    m, t = g.n * g.oh * g.ow, g.kh * g.kw
    if 4 * m * t * g.c > _COLUMNS_BYTES:
        return None
    cols = np.empty((g.n, g.oh, g.ow, g.kh, g.kw, g.c), np.float32)
    for ky in range(g.kh):
        for kx in range(g.kw):
            cols[:, :, :, ky, kx, :] = xp[tap_slices(g, ky, kx)]
    return cols.reshape(m, t * g.c)


def _conv_input_grad(g: Geometry, f: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """d x of y = conv(x, f) (NHWC), given d y."""
    dxp = np.zeros((g.n, g.h + g.pt + g.pb, g.w + g.pl + g.pr, g.c), np.float32)
    dy2 = dy.reshape(-1, dy.shape[-1]).astype(np.float32, copy=False)
    if 4 * dy2.shape[0] * g.kh * g.kw * g.c <= _COLUMNS_BYTES:
        dcols = (dy2 @ f.reshape(-1, f.shape[3]).T).reshape(g.n, g.oh, g.ow, g.kh, g.kw, g.c)
        tap = lambda ky, kx: dcols[:, :, :, ky, kx, :]    # noqa: E731
    else:
        tap = lambda ky, kx: (dy2 @ f[ky, kx].T).reshape(g.n, g.oh, g.ow, g.c)    # noqa: E731
    for ky in range(g.kh):
        for kx in range(g.kw):
            dxp[tap_slices(g, ky, kx)] += tap(ky, kx)
    return _unpadded(dxp, g)


def _conv_filter_grad(g: Geometry, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """d f of y = conv(x, f) (NHWC), given d y."""
    xp = padded(x.astype(np.float32, copy=False), g)
    dy2 = dy.reshape(-1, dy.shape[-1]).astype(np.float32, copy=False)
    cols = _columns(xp, g)
    if cols is not None:
        return (cols.T @ dy2).reshape(g.kh, g.kw, g.c, dy2.shape[1])
    df = np.empty((g.kh, g.kw, g.c, dy2.shape[1]), np.float32)
    for ky in range(g.kh):
        for kx in range(g.kw):
            df[ky, kx] = xp[tap_slices(g, ky, kx)].reshape(-1, g.c).T @ dy2
    return df


def conv_forward(g: Geometry, x: np.ndarray, f: np.ndarray) -> np.ndarray:
    xp = padded(x.astype(np.float32, copy=False), g)
    cols = _columns(xp, g)
    if cols is not None:
        return (cols @ f.reshape(-1, f.shape[3])).reshape(g.n, g.oh, g.ow, f.shape[3])
    y = np.zeros((g.n * g.oh * g.ow, f.shape[3]), np.float32)
    for ky in range(g.kh):
        for kx in range(g.kw):
            y += xp[tap_slices(g, ky, kx)].reshape(-1, g.c) @ f[ky, kx]
    return y.reshape(g.n, g.oh, g.ow, f.shape[3])


def _nhwc_grad(rule):
    """rule(attrs_nhwc, x_nhwc, f, dy_nhwc, need_dx) -> (dx_nhwc | None, df), for either
    data_format. ``needs`` (from the autograd) may say the input needs no gradient."""
    def grad(attrs, ins, outs, dys, needs=None):
        x, f = ins[0], ins[1]
        need_dx = needs is None or bool(needs[0])
        if data_format(attrs) == "NCHW":
            dx, df = rule(nhwc_attrs(attrs), x.transpose(0, 2, 3, 1), f, dys[0].transpose(0, 2, 3, 1), need_dx)
            dx = None if dx is None else np.ascontiguousarray(dx.transpose(0, 3, 1, 2))
        else:
            dx, df = rule(attrs, x, f, dys[0], need_dx)
        return [dx, df] + [None] * (len(ins) - 2)
    return grad


def _conv_grad_nhwc(attrs, x, f, dy, need_dx=True):
    g = geometry(attrs, x.shape, *f.shape[:2])
    return _conv_input_grad(g, f, dy) if need_dx else None, _conv_filter_grad(g, x, dy)


def _depthwise_grad_nhwc(attrs, x, f, dy, need_dx=True):
    g = geometry(attrs, x.shape, *f.shape[:2])
    dy5 = dy.reshape(g.n, g.oh, g.ow, g.c, f.shape[3]).astype(np.float32, copy=False)
    xp = padded(x.astype(np.float32, copy=False), g)
    dxp = np.zeros_like(xp)
    df = np.empty(f.shape, np.float32)
    for ky in range(g.kh):
        for kx in range(g.kw):
            sl = tap_slices(g, ky, kx)
            dxp[sl] += np.einsum("nhwcm,cm->nhwc", dy5, f[ky, kx])
            df[ky, kx] = np.einsum("nhwc,nhwcm->cm", xp[sl], dy5)
    return _unpadded(dxp, g), df


def _backprop_input_grad(attrs, ins, outs, dys):
    """y = Conv2DBackpropInput(sizes, f, d) is the input gradient of a convolution: d d is that
    convolution applied to d y, d f its filter gradient with x = d y and dy = d."""
    sizes, f, d = ins
    fmt = data_format(attrs)
    a = nhwc_attrs(attrs)
    dY = dys[0].transpose(0, 2, 3, 1) if fmt == "NCHW" else dys[0]
    dn = d.transpose(0, 2, 3, 1) if fmt == "NCHW" else d
    g = geometry(a, dY.shape, *f.shape[:2])
    dd = conv_forward(g, dY, f)
    df = _conv_filter_grad(g, dY, dn)
    dd = np.ascontiguousarray(dd.transpose(0, 3, 1, 2)) if fmt == "NCHW" else dd
    return [None, df, dd]


# ---------------------------------------------------------------------------------- shape rules
def _check_float(ins):
    if ins[0].dtype != F:
        raise TypeError(f"convolutions support float32, got {ins[0].dtype}")


def _checked_geometry(attrs, ins, layout: str, note: str = "") -> Geometry:
    """The geometry of a float32 input ``ins[0]`` under a rank-4 ``layout`` filter ``ins[1]``
    whose third dimension is the input's channels."""
    _check_float(ins)
    x, f = ins[0], ins[1]
    if len(f.shape) != 4:
        raise ValueError(f"filter must have rank 4 ({layout}), got shape {f.shape}")
    g = geometry(attrs, x.shape, *f.shape[:2])
    if g.c != f.shape[2]:
        raise ValueError(f"input has {g.c} channels but the filter expects {f.shape[2]}{note}")
    return g


def _conv_shape(attrs, ins):
    f = ins[1]
    g = _checked_geometry(attrs, ins, "HWIO", " (grouped convolutions are not supported)")
    return [(from_nhwc((g.n, g.oh, g.ow, f.shape[3]), data_format(attrs)), F)]


def _depthwise_shape(attrs, ins):
    f = ins[1]
    g = _checked_geometry(attrs, ins, "H, W, in, multiplier")
    return [(from_nhwc((g.n, g.oh, g.ow, f.shape[2] * f.shape[3]), data_format(attrs)), F)]


def _backprop_input_shape(attrs, ins):
    sizes, f, dy = ins
    if dy.dtype != F:
        raise TypeError(f"convolutions support float32, got {dy.dtype}")
    if sizes.value is None:
        raise ValueError("input_sizes must be known before running")
    if len(f.shape) != 4 or len(sizes.value) != 4:
        raise ValueError(f"filter must have rank 4 and input_sizes 4 entries, got {f.shape} and {sizes.value}")
    g = _backprop_geometry(attrs, sizes.value, f.shape, dy.shape)
    if g.c != f.shape[2]:
        raise ValueError(f"input_sizes has {g.c} channels but the filter expects {f.shape[2]}")
    return [(tuple(int(s) for s in sizes.value), F)]


# ------------------------------------------------------------------------------------ lowering
def use_subgroups(device) -> bool:
    """llvmpipe with 256-bit vectors runs 8 consecutive invocations as one subgroup."""
    bits = re.search(r"(\d+) bits", device.adapter.info.get("device", ""))
    return "subgroup" in device.features and device.is_software and bits is not None and int(bits[1]) == 256


def nhwc_input(ctx, i: int, g: Geometry, channels: int, repeat: int = 1):
    """Input ``i`` as NHWC with ``channels`` channels (a multiple of 4): itself when it is, else a
    copy that transposes NCHW, repeats each channel ``repeat`` times and zero-pads the rest."""
    t = ctx.inputs[i]
    nchw = data_format(ctx.attrs) == "NCHW"
    if not nchw and repeat == 1 and g.c == channels:
        return t
    buf = ctx.temp(4 * g.n * g.h * g.w * channels, f"input{i}-nhwc")
    hw, c = g.h * g.w, g.c
    src = [c * hw, 1, hw] if nchw else [hw * c, c, 1]
    if repeat == 1:
        copy(ctx, t, buf, [g.n, hw, channels], src, mode=PAD, lo=[0, 0, 0], ext=[g.n, hw, c])
    else:   # depthwise multiplier: channel k is input channel k // repeat; padding channels stay
            # unwritten (depthwise channels never mix, and their outputs are dropped)
        copy(ctx, t, buf, [g.n, hw, c, repeat], src + [0], dst_strides=[hw * channels, channels, repeat, 1])
    return buf


def output_nhwc(ctx, n: int, hw: int, channels: int):
    """Where a kernel writes its [n, hw, channels] NHWC result: the output itself when that is its
    layout, else a temporary that :func:`finish_output` copies out."""
    out = ctx.outputs[0]
    ctx.device_output()
    if data_format(ctx.attrs) == "NHWC" and out.shape[-1] == channels:
        return out.buf
    return ctx.temp(4 * n * hw * channels, "result-nhwc")


def finish_output(ctx, buf, n: int, hw: int, channels: int) -> None:
    out = ctx.outputs[0]
    if buf is out.buf:
        return
    c = out.shape[1] if data_format(ctx.attrs) == "NCHW" else out.shape[-1]
    if data_format(ctx.attrs) == "NCHW":
        copy(ctx, buf, out.buf, [n, c, hw], [hw * channels, 1, channels])
    else:
        copy(ctx, buf, out.buf, [n, hw, c], [hw * channels, channels, 1])


def split_rows(rows: int, per_row: int, fixed: int = 64) -> list[tuple[int, int]]:
    """Ranges of filter rows whose loops (``per_row`` iterations per row, plus ``fixed``) stay
    within LOOP_BUDGET."""
    step = (LOOP_BUDGET - fixed) // (per_row + 1)
    if step < 1:
        raise ValueError(f"a filter row needs {per_row} loop iterations; at most {LOOP_BUDGET - fixed - 1} "
                         "fit one invocation on this runtime")
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def _passes(kh: int, kw: int, k4: int) -> list[tuple[int, int, int, int]]:
    """(ky0, ky1, c0, c1) passes of conv2d_main.wgsl: per filter row it loops kw * (c1 - c0 + 1)."""
    c_step = max(1, min(k4, (LOOP_BUDGET - 64 - kh) // (kh * kw) - 1))
    rows = split_rows(kh, kw * (c_step + 1))
    return [(r0, r1, c, min(k4, c + c_step)) for r0, r1 in rows for c in range(0, k4, c_step)]


@dataclass(frozen=True)
class Activation:
    """How a convolution pass ends (kernels/conv_epilogue.wgsl): the pipeline's override
    constants and template values, and the uniform's slope and cap."""
    constants: dict
    template: dict
    slope: float
    hi: float


@dataclass
class Epilogue:
    """What follows a convolution's sum. Bias and batch-norm scale fold into the packed filter;
    the kernel applies the activation: the registry's expression (template ACTIVATION, from
    ops/fused.py), or for the piecewise-linear ones the speed path PWL, min(max(v, v * slope), hi)
    in one pipeline they all share (one compile, not one per activation)."""
    bias: np.ndarray                  # per output channel
    scale: np.ndarray | None          # per output channel, or None
    bufs: list                        # the ep_bias / ep_scale / ep_alpha / ep_residual bindings
                                      # (ep_alpha: Prelu; ep_residual: fused_ops "Add", the output's
                                      # padded NHWC layout, read in the last pass only)
    activation: Activation


IDENTITY = Activation({"PWL": True}, fused.template(None), 1.0, float("inf"))   # passes before the last
# PWL: (slope, cap) of the piecewise-linear activations (LeakyRelu: its alpha, when <= 1)
_PWL = {None: (1.0, float("inf")), "Relu": (0.0, float("inf")), "Relu6": (0.0, 6.0)}


def epilogue(ctx, first_extra: int, channels: int) -> Epilogue:
    """The epilogue of the node's fused_ops; its extra inputs start at ``first_extra``."""
    ep = fused.parse(ctx.attrs, [t.value for t in ctx.inputs[first_extra:]], channels, ctx.node.name)
    bufs = fused.bind(ctx, replace(ep, bias=None, scale=None), first_extra, channels,
                      residual=_residual_nhwc(ctx, ep, first_extra))
    bias = ep.bias if ep.bias is not None else np.zeros(channels, np.float32)
    act = ep.activation
    res = {"HAS_RESIDUAL": ep.constants["HAS_RESIDUAL"]}
    if act in _PWL or (act == "LeakyRelu" and ep.leaky_alpha <= 1):
        slope, hi = _PWL.get(act, (ep.leaky_alpha, float("inf")))
        activation = replace(IDENTITY, slope=slope, hi=hi, constants={**IDENTITY.constants, **res})
    else:
        activation = Activation({"PRELU": ep.constants["PRELU"], **res}, ep.template, ep.leaky_alpha, 0.0)
    return Epilogue(bias, ep.scale, bufs, activation)


def _residual_nhwc(ctx, ep, first_extra: int):
    """The residual input as the kernels' output layout ([n, h, w, channels padded to 4]): the
    input itself when it is that already, else one copy (transposing NCHW, broadcasting, padding);
    None without a residual."""
    if ep.residual_index is None:
        return None
    fused.residual_check(ep, ctx, first_extra)
    t = ctx.inputs[first_extra + ep.residual_index]
    fmt = data_format(ctx.attrs)
    out_shape = tuple(ctx.outputs[0].shape)
    n, h, w, c = to_nhwc(out_shape, fmt)
    cp = 4 * cdiv(c, 4)
    if fmt == "NHWC" and cp == c and tuple(t.shape) == out_shape:
        return None
    buf = ctx.temp(4 * max(1, n * h * w * cp), "residual-nhwc")
    src = to_nhwc(broadcast_strides(t.shape, out_shape), fmt)
    copy(ctx, t, buf, [n, h, w, cp], list(src), mode=PAD, lo=[0, 0, 0, 0], ext=[n, h, w, c])
    return buf


def _launch_conv(ctx, x, packed: np.ndarray, key: str, y, ep: Epilogue, g: Geometry, m: int, n4: int, k4: int,
                 transposed: bool, variant=None, dense: bool = False):
    """An implicit matmul over [m pixels, 4*n4 channels] reducing k4 channel vec4s per tap, with
    the ``packed`` filter (_pack_filter; a model constant under ``key``): the variant
    tiled.conv_variant chooses, conv2d_main.wgsl ("regblock"), conv2d_texture*.wgsl (input and
    filter as textures), conv2d_uniform.wgsl (an input of at most 4 channels; the filter in the
    uniform block) or conv2d_tiled.wgsl; ``variant`` overrides the choice. ``dense``: x holds g.c
    channels per pixel, not padded to 4*k4 (the texture and uniform variants only)."""
    variant = variant or tiled.conv_variant(ctx.device, g, m, n4, k4, transposed, half=ctx.half)
    passes = [{"ky0": ky0, "ky1": ky1, "c0": c0, "c1": c1} for ky0, ky1, c0, c1 in _passes(g.kh, g.kw, k4)]
    outputs, splits = [y], 1
    if variant.name == tiled.TEXTURE.name:
        x = ctx.texture_of(x, g.n * g.h * g.w * g.c // 4 if dense else g.n * g.h * g.w * k4)
        w = ctx.texture_constant(packed, key)
        outputs.append(texture_residual(ctx, ep, w, m * n4))
        grid, template, constants = tiled.texture_launch(g, m, n4)
        subgroups = use_subgroups(ctx.device) and not constants.get("COLUMN_LANES")
        kernel = "conv2d_texture_subgroup.wgsl" if subgroups else "conv2d_texture.wgsl"
        constants = {**constants, "DENSE_C": g.c if dense else 0}
    elif variant.name == tiled.UNIFORM.name:      # the filter in the uniform block (ops/conv_uniform.py)
        x = w = ctx.texture_of(x, g.n * g.h * g.w * g.c // 4 if dense else g.n * g.h * g.w * k4)  # (w: unread)
        outputs.append(texture_residual(ctx, ep, w, m * n4))
        kernel, template = "conv2d_uniform.wgsl", conv_uniform.template(g.kh, g.kw, g.c, n4)
        grid = grid_z(cdiv(cdiv(m, conv_uniform.TM), 8))
        constants = {"DENSE_C": g.c if dense else 4 * k4}
        rows = conv_uniform.filter_rows(packed, g.kh * g.kw, g.c, 4 * k4)
        passes = [{"ky0": 0, "ky1": g.kh, "c0": 0, "c1": k4, "fw": list(rows.reshape(-1, 4))}]
    elif variant.name == tiled.REGBLOCK.name:
        w = ctx.constant(packed, F, key)
        kernel = "conv2d_subgroup.wgsl" if use_subgroups(ctx.device) else "conv2d.wgsl"
        wg = 8 if ctx.device.is_software else WORKGROUP     # llvmpipe: 8 (one SIMD batch, a subgroup)
        grid = grid_z(cdiv(cdiv(m, 4), wg), cdiv(n4, 8))
        template, constants = {}, {"WG": wg}
    else:
        w = ctx.constant(packed, F, key)
        kernel, grid, template, constants, passes, splits = tiled.conv_launch(variant, g, m, n4, k4, transposed)
        if ctx.half:        # f16 tiles and accumulators (precision.py)
            template = {**template, **precision.HALF_TEMPLATE}
        if splits > 1:      # partial sums per K chunk, added up (and the epilogue run) by conv_splitk.wgsl
            outputs = [ctx.temp(16 * splits * m * n4, "split-partials")]
    for i, extra in enumerate(passes):
        act = ep.activation if i == len(passes) - 1 and splits == 1 else IDENTITY
        ctx.dispatch(kernel, [x, w, *ep.bufs, *outputs], grid,
                     params={"m": m, "n4": n4, "k4": k4, "alpha": act.slope, "h": g.h, "w": g.w,
                             "oh": g.oh, "ow": g.ow, "kh": g.kh, "kw": g.kw, "stride_h": g.sh,
                             "stride_w": g.sw, "dil_h": g.dh, "dil_w": g.dw, "pad_t": g.pt, "pad_l": g.pl,
                             "hi": act.hi, **extra},
                     template={**act.template, **template},
                     constants={"TRANSPOSED": transposed, "ACCUMULATE": i > 0, **constants, **act.constants})
    if splits > 1:
        act = ep.activation
        ctx.dispatch("conv_splitk.wgsl", [outputs[0], w, *ep.bufs, y], grid_1d(m * n4),
                     params={"n": m * n4, "n4": n4, "splits": splits, "bias_row": g.kh * g.kw * 4 * k4,
                             "alpha": act.slope, "hi": act.hi},
                     template=act.template, constants=act.constants)


def texture_residual(ctx, ep: Epilogue, w, texels: int):
    """The texture kernels' binding after y (conv_texture_bindings.wgsl): the residual's
    ``texels`` vec4s copied into the second scratch texture, fetched instead of loaded from its
    buffer lane by lane; without a residual, ``w`` (bound, never read)."""
    if not ep.activation.constants.get("HAS_RESIDUAL"):
        return w
    return ctx.texture_of(ep.bufs[3], texels, slot=1)


def _conv_gemm(ctx, x, f: np.ndarray, ep: Epilogue, g: Geometry, hw: int, k4: int, n4: int,
               transposed: bool, variant=None, dense: bool = False) -> None:
    """Packs the [kh, kw, k, n] filter ``f`` and runs :func:`_launch_conv` over ``x`` into the
    op's output ([g.n, hw, 4*n4] NHWC, copied out by :func:`finish_output` when padded)."""
    packed = _pack_filter(f, ep, 4 * k4, 4 * n4)
    y = output_nhwc(ctx, g.n, hw, 4 * n4)
    _launch_conv(ctx, x, packed, "conv-filter-t" if transposed else "conv-filter", y, ep, g, g.n * hw, n4, k4,
                 transposed=transposed, variant=variant, dense=dense)
    finish_output(ctx, y, g.n, hw, 4 * n4)


def texture_matmul(ctx, a, b: np.ndarray, m: int, k4: int) -> None:
    """The node's [m, k] x [k, n] product (a 2-D MatMul / _FusedMatMul without a residual), with
    ``a`` the [m, 4*k4] operand (zero padded) and ``b`` the float32 weight [k, n], as a 1x1
    convolution over m pixels by conv2d_texture*.wgsl (the matmul family's "texture" variant)."""
    k, n = b.shape
    g = Geometry(1, m, 1, 4 * k4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, m, 1)
    _conv_gemm(ctx, a, b.reshape(1, 1, k, n), epilogue(ctx, 2, n), g, m, k4, cdiv(n, 4), transposed=False,
               variant=tiled.TEXTURE)


def _filter(ctx, i: int, what: str) -> np.ndarray:
    v = ctx.inputs[i].value
    if v is None:
        raise ValueError(f"the {what} must be a constant (a model weight)")
    return np.asarray(v, np.float32)


def _pack_filter(f: np.ndarray, ep: Epilogue, cin_p: int, cout_p: int) -> np.ndarray:
    """[kh, kw, cin, cout] (scaled by the batch-norm scale) -> [kh*kw*cin_p + 1, cout_p] with
    the bias as the last row, zero padded."""
    kh, kw, cin, cout = f.shape
    packed = np.zeros((kh * kw * cin_p + 1, cout_p), np.float32)
    packed[:-1].reshape(kh * kw, cin_p, cout_p)[:, :cin, :cout] = (
        f.reshape(kh * kw, cin, cout) * (1 if ep.scale is None else ep.scale))
    packed[-1, :cout] = ep.bias
    return packed


def _lower_conv(ctx):
    f = _filter(ctx, 1, "filter")
    g = geometry(ctx.attrs, ctx.inputs[0].shape, *f.shape[:2])
    cout = f.shape[3]
    k4, n4 = cdiv(g.c, 4), cdiv(cout, 4)
    ep = epilogue(ctx, 2, cout)
    variant = tiled.conv_variant(ctx.device, g, g.n * g.oh * g.ow, n4, k4, False, half=ctx.half)
    # the texture and uniform kernels read NHWC input whose channels are not a multiple of 4 (an
    # RGB image into the first convolution) as it is, without a padded copy, when its texels are whole
    dense = (variant.name in (tiled.TEXTURE.name, tiled.UNIFORM.name) and data_format(ctx.attrs) == "NHWC" and g.c % 4 != 0
             and g.n * g.h * g.w * g.c % 4 == 0)
    x = ctx.inputs[0] if dense else nhwc_input(ctx, 0, g, 4 * k4)
    _conv_gemm(ctx, x, f, ep, g, g.oh * g.ow, k4, n4, transposed=False, variant=variant, dense=dense)


def _lower_backprop_input(ctx):
    f = _filter(ctx, 1, "filter")
    g = _backprop_geometry(ctx.attrs, ctx.value(0), f.shape, ctx.inputs[2].shape)
    if ctx.inputs[2].size == 0:     # (an empty output is never lowered)
        raise ValueError("an empty out_backprop gives no gradient")
    cin, cout = f.shape[2:]
    k4, n4 = cdiv(cout, 4), cdiv(cin, 4)
    # the gather runs over dy (spatial oh x ow, cout channels) into dx (h x w, cin channels)
    gather = Geometry(g.n, g.oh, g.ow, cout, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pb, g.pl, g.pr, g.h, g.w)
    dy = nhwc_input(ctx, 2, gather, 4 * k4)
    ep = epilogue(ctx, 3, cin)
    _conv_gemm(ctx, dy, f.transpose(0, 1, 3, 2), ep, gather, g.h * g.w, k4, n4, transposed=True)


def _lower_depthwise(ctx):
    f = _filter(ctx, 1, "filter")
    g = geometry(ctx.attrs, ctx.inputs[0].shape, *f.shape[:2])
    c, mult = f.shape[2:]
    cout = c * mult
    c4 = cdiv(cout, 4)
    ep = epilogue(ctx, 2, cout)
    x = nhwc_input(ctx, 0, g, 4 * c4, repeat=mult)
    taps = g.kh * g.kw
    packed = np.zeros((taps + 1, 4 * c4), np.float32)
    packed[:taps, :cout] = f.reshape(taps, cout) * (1 if ep.scale is None else ep.scale)
    packed[taps, :cout] = ep.bias
    y = output_nhwc(ctx, g.n, g.oh * g.ow, 4 * c4)
    variant = tiled.depthwise_variant(ctx.device, g, c4)
    kernel, outputs = "depthwise.wgsl", [y]
    if variant.name == tiled.TEXTURE.name:      # depthwise_main.wgsl's product, reading textures
        x = ctx.texture_of(x, g.n * g.h * g.w * c4)
        w = ctx.texture_constant(packed, "depthwise-filter")
        outputs.append(texture_residual(ctx, ep, w, g.n * g.oh * g.ow * c4))
        kernel = "depthwise_texture.wgsl"
    else:
        w = ctx.constant(packed, F, "depthwise-filter")
    blocked = variant.name in (tiled.REGBLOCK.name, tiled.TEXTURE.name)
    if not blocked:     # depthwise_tiled.wgsl: one pass
        tiled_kernel, grid, template, params = tiled.depthwise_launch(variant, g, c4)
        act = ep.activation
        ctx.dispatch(tiled_kernel, [x, w, *ep.bufs, y], grid, params={**params, "alpha": act.slope, "hi": act.hi},
                     template={**act.template, **template}, constants=act.constants)
    passes = split_rows(g.kh, g.kw) if blocked else []
    row3 = g.sw if g.kw == 3 and g.dw == 1 and g.sw <= 2 else 0
    # the texture kernel's cost is its fetches: 3x3 filters in one pass take output rows in pairs
    pairs = (kernel == "depthwise_texture.wgsl" and row3 and g.kh == 3 and g.dh == 1 and g.sh == g.sw
             and len(passes) == 1)
    owb, ohb = cdiv(g.ow, 8), cdiv(g.oh, 2) if pairs else g.oh
    n = g.n * ohb * owb * c4
    for i, (ky0, ky1) in enumerate(passes):
        act = ep.activation if i == len(passes) - 1 else IDENTITY
        ctx.dispatch(kernel, [x, w, *ep.bufs, *outputs], grid_1d(n),
                     params={"n": n, "c4": c4, "owb": owb, "alpha": act.slope, "h": g.h, "w": g.w,
                             "oh": ohb, "ow": g.ow, "kw": g.kw, "stride_h": g.sh, "stride_w": g.sw,
                             "dil_h": g.dh, "dil_w": g.dw, "pad_t": g.pt, "pad_l": g.pl, "ky0": ky0,
                             "ky1": ky1, "kh": g.kh, "hi": act.hi, "rows": g.oh},
                     template=act.template,
                     constants={"ACCUMULATE": i > 0, "ROW3": row3, "PAIRS": bool(pairs), **act.constants})
    finish_output(ctx, y, g.n, g.oh * g.ow, 4 * c4)


# ---------------------------------------------------------------------------------------- cases
class IntegerValued(Case):
    """float32 inputs rounded to integers: products and partial sums are exact, so a long
    reduction compares exactly whatever the summation order."""

    def materialize(self, seed: int = 0) -> list[np.ndarray]:
        return [np.round(a) for a in super().materialize(seed)]


def _x(shape):
    return (shape, F)


def _a(strides=(1, 1), padding="SAME", **kw) -> dict:
    """Attrs in NHWC order from (row, column) strides."""
    return {"strides": [1, *strides, 1], "padding": padding, **kw}


def _explicit(top, bottom, left, right) -> dict:
    return {"padding": "EXPLICIT", "explicit_paddings": [0, 0, top, bottom, left, right, 0, 0]}


def _sizes(*dims):
    return np.array(dims, np.int32)


# Registry cases are also checked against TF's CPU kernels (no oneDNN), which lack NCHW, and
# dilations for depthwise / backprop-input: tests/test_ops_conv.py covers those (EXTRA_CASES).
_CONV_CASES = [
    Case([_x((1, 5, 6, 8)), _x((1, 1, 8, 12))], _a(padding="VALID"), note="1x1 pointwise"),
    Case([_x((2, 7, 9, 4)), _x((3, 3, 4, 8))], _a(), note="3x3 SAME, batch 2"),
    Case([_x((1, 9, 11, 3)), _x((3, 3, 3, 5))], _a((2, 2)),
         note="stride 2 SAME, odd sizes, 3 in / 5 out channels (padded copies)"),
    Case([_x((2, 8, 10, 3)), _x((3, 3, 3, 8))], _a((2, 2)),
         note="stride 2 SAME, 3 channels in whole texels (the texture kernel reads them unpadded)"),
    Case([_x((1, 4, 6, 6)), _x((3, 3, 6, 4))], _a(), note="6 channels in whole texels (unpadded: 2 vec4 steps)"),
    Case([_x((1, 10, 11, 4)), _x((2, 3, 4, 6))], _a((2, 3), "VALID"), note="VALID strides 2x3"),
    Case([_x((1, 6, 7, 4)), _x((3, 3, 4, 4))], {**_a(), **_explicit(1, 2, 0, 3)}, note="EXPLICIT"),
    Case([_x((1, 9, 9, 4)), _x((3, 3, 4, 8))], _a(dilations=[1, 2, 2, 1]), note="dilation 2"),
    Case([_x((1, 8, 9, 4)), _x((3, 2, 4, 8))], _a((2, 1), dilations=[1, 1, 2, 1]),
         note="stride 2 rows, dilation 2 columns"),
    Case([_x((1, 1, 1, 4)), _x((1, 1, 4, 4))], _a(), note="size-1"),
    Case([_x((1, 3, 3, 1)), _x((3, 3, 1, 1))], _a(padding="VALID"), note="one window, 1 channel"),
    Case([_x((3, 5, 7, 12)), _x((1, 1, 12, 40))], _a(), note="40 output channels (2 column blocks), 105 rows"),
    Case([_x((0, 4, 4, 4)), _x((3, 3, 4, 4))], _a(), note="empty batch"),
    IntegerValued([_x((1, 1, 2, 262148)), _x((1, 1, 262148, 4))], _a(padding="VALID"),
                  note="65537 channel vec4s: reduction split into passes (loop cap)"),
    IntegerValued([_x((3, 13, 11, 20)), _x((3, 3, 20, 67))], _a((2, 2)),
                  note="batch 3, stride 2 SAME, 20 -> 67 channels: ragged edges of every tile size"),
    IntegerValued([_x((3, 12, 13, 9)), _x((3, 3, 9, 70))], _a(padding="VALID", dilations=[1, 2, 2, 1]),
                  note="batch 3, dilation 2 VALID, 9 -> 70 channels"),
    IntegerValued([_x((3, 9, 10, 16)), _x((2, 3, 16, 66))], {**_a((1, 2)), **_explicit(2, 0, 1, 3)},
                  note="batch 3, EXPLICIT, stride 1x2, 16 -> 66 channels"),
    IntegerValued([_x((3, 10, 9, 36)), _x((1, 1, 36, 65))], _a(padding="VALID"),
                  note="batch 3, 1x1 (pointwise GEMM), 36 -> 65 channels"),
]

_DEPTHWISE_CASES = [
    Case([_x((1, 7, 9, 8)), _x((3, 3, 8, 1))], _a(), note="3x3 SAME"),
    Case([_x((2, 9, 10, 12)), _x((3, 3, 12, 1))], _a((2, 2), "VALID"), note="stride 2 VALID"),
    Case([_x((1, 6, 7, 3)), _x((3, 3, 3, 2))], _a(), note="multiplier 2, 3 channels (repeat + pad copy)"),
    Case([_x((1, 6, 7, 5)), _x((2, 3, 5, 1))], {**_a(), **_explicit(1, 2, 3, 0)}, note="EXPLICIT"),
    Case([_x((1, 1, 1, 4)), _x((1, 1, 4, 1))], _a(padding="VALID"), note="size-1"),
    IntegerValued([_x((1, 250, 250, 4)), _x((250, 250, 4, 1))], _a(padding="VALID"),
                  note="62500 taps: filter rows split into passes (loop cap)"),
    Case([_x((3, 17, 19, 40)), _x((3, 3, 40, 1))], _a((2, 2)),
         note="batch 3, stride 2 SAME, 40 channels: ragged edges of every patch tile"),
    IntegerValued([_x((3, 12, 11, 36)), _x((5, 5, 36, 1))], _a(padding="VALID"),
                  note="batch 3, 5x5 VALID, 36 channels (integers: 25 taps sum exactly)"),
]

_BPI_CASES = [
    Case([_sizes(1, 7, 9, 4), _x((3, 3, 4, 8)), _x((1, 7, 9, 8))], _a(), note="stride 1 SAME"),
    Case([_sizes(2, 9, 8, 3), _x((3, 3, 3, 6)), _x((2, 5, 4, 6))], _a((2, 2)),
         note="stride 2 SAME, odd size, 3 channels"),
    Case([_sizes(1, 8, 9, 4), _x((2, 3, 4, 5)), _x((1, 4, 3, 5))], _a((2, 3), "VALID"), note="VALID strides 2x3"),
    Case([_sizes(1, 7, 8, 4), _x((3, 3, 4, 5)), _x((1, 4, 3, 5))], {**_a((2, 2)), **_explicit(1, 1, 0, 0)},
         note="EXPLICIT"),
    IntegerValued([_sizes(3, 13, 11, 67), _x((3, 3, 67, 20)), _x((3, 7, 6, 20))], _a((2, 2)),
                  note="batch 3, stride 2 SAME, 20 -> 67 channels: ragged tiles"),
]

_NCHW = {"data_format": "NCHW"}
EXTRA_CASES = {
    "Conv2D": [Case([_x((1, 4, 6, 7)), _x((3, 3, 4, 5))], {"strides": [1, 1, 2, 2], "padding": "SAME", **_NCHW},
                    note="NCHW")],
    "DepthwiseConv2dNative": [
        Case([_x((1, 9, 9, 4)), _x((3, 3, 4, 1))], _a(dilations=[1, 2, 2, 1]), note="dilation 2"),
        Case([_x((1, 8, 17, 4)), _x((3, 3, 4, 1))], _a((2, 1)), note="stride 2 rows only"),
        Case([_x((1, 4, 5, 6)), _x((3, 3, 4, 2))],
             {"strides": [1, 1, 1, 1], "padding": "EXPLICIT", "explicit_paddings": [0, 0, 0, 0, 1, 0, 2, 1], **_NCHW},
             note="NCHW, EXPLICIT, multiplier 2")],
    "Conv2DBackpropInput": [
        Case([_sizes(1, 7, 8, 4), _x((3, 3, 4, 8)), _x((1, 7, 8, 8))], _a(dilations=[1, 2, 2, 1]), note="dilation 2"),
        Case([_sizes(1, 4, 6, 7), _x((3, 3, 4, 5)), _x((1, 5, 3, 4))],
             {"strides": [1, 1, 2, 2], "padding": "SAME", **_NCHW}, note="NCHW")],
}

_FUSED_OPS = [["BiasAdd"], ["BiasAdd", "Relu"], ["BiasAdd", "Relu6"], ["BiasAdd", "LeakyRelu"], ["BiasAdd", "Prelu"],
              ["BiasAdd", "Elu"], ["BiasAdd", "Sigmoid"], ["BiasAdd", "Tanh"], ["FusedBatchNorm"],
              ["FusedBatchNorm", "Relu6"], ["FusedBatchNorm", "Prelu"],
              # a residual (the output's shape) added before the activation
              ["BiasAdd", "Add"], ["BiasAdd", "Add", "Relu6"], ["BiasAdd", "Add", "Elu"],
              ["BiasAdd", "Add", "Prelu"], ["FusedBatchNorm", "Add", "Relu"]]


def _fused_cases(x_shape, f_shape, cout: int, attrs: dict, out_shape=None) -> list[Case]:
    """One case per fused_ops variant; extra inputs in TF's order (bias | scale, offset, mean,
    variance; then the residual, of ``out_shape``; then Prelu's alpha)."""
    cases = []
    for ops in _FUSED_OPS:
        if ops[0] == "BiasAdd":
            extra = [_x((cout,))]
        else:
            extra = [_x((cout,)), _x((cout,)), _x((cout,)), ((cout,), F, 0.1, 2.0)]    # variance > 0
        if "Add" in ops:
            extra.append(_x(out_shape))
        if ops[-1] == "Prelu":
            extra.append(_x((cout,)))
        a = {**attrs, "fused_ops": ops, "num_args": len(extra), "epsilon": 0.001}
        if ops[-1] == "LeakyRelu":
            a["leakyrelu_alpha"] = 0.1
        cases.append(Case([_x(x_shape), _x(f_shape), *extra], a, note="+".join(ops)))
    return cases


def _bias_relu(relu="Relu6", **kw):
    return {"fused_ops": ["BiasAdd", relu], "num_args": 1, **kw}


_FUSED_CONV_CASES = _fused_cases((1, 6, 7, 8), (3, 3, 8, 12), 12, _a(), (1, 6, 7, 12)) + [
    Case([_x((1, 4, 5, 6)), _x((1, 1, 4, 6)), _x((6,))],
         {"strides": [1, 1, 2, 2], "padding": "VALID", **_NCHW, **_bias_relu()}, note="NCHW, stride 2, 6 channels"),
    Case([_x((1, 5, 6, 8)), _x((1, 1, 8, 12)), _x((12,))], {**_a(), **_bias_relu("LeakyRelu", leakyrelu_alpha=1.5)},
         note="LeakyRelu slope > 1 (not the piecewise-linear path)"),
    IntegerValued([_x((1, 1, 2, 262148)), _x((1, 1, 262148, 4)), _x((4,))],
                  {**_a(padding="VALID"), **_bias_relu("Relu")},
                  note="passes (loop cap): bias in the first, Relu in the last"),
    IntegerValued([_x((1, 1, 2, 262148)), _x((1, 1, 262148, 4)), _x((4,)), _x((1, 1, 2, 4))],
                  {**_a(padding="VALID"), "fused_ops": ["BiasAdd", "Add", "Relu"], "num_args": 2},
                  note="passes (loop cap): the residual and Relu in the last only"),
    Case([_x((1, 4, 5, 6)), _x((1, 1, 4, 6)), _x((6,)), _x((1, 6, 1, 3))],
         {"strides": [1, 1, 2, 2], "padding": "VALID", **_NCHW, "fused_ops": ["BiasAdd", "Add", "Relu6"],
          "num_args": 2}, note="NCHW, 6 channels (padded), residual broadcast along a spatial dim"),
    IntegerValued([_x((1, 3, 3, 64)), _x((3, 3, 64, 8)), _x((8,)), _x((8,))],
                  {**_a(), "fused_ops": ["BiasAdd", "Prelu"], "num_args": 2},
                  note="9 pixels over a K of 576: the tiles' split-K forms, Prelu in the second pass"),
]
_FUSED_DEPTHWISE_CASES = _fused_cases((1, 7, 6, 8), (3, 3, 8, 1), 8, _a((2, 2)), (1, 4, 3, 8)) + [
    Case([_x((1, 5, 6, 3)), _x((3, 3, 3, 2)), _x((6,))], {**_a(), **_bias_relu()}, note="multiplier 2, 6 channels"),
    IntegerValued([_x((1, 250, 250, 4)), _x((250, 250, 4, 1)), _x((4,))], {**_a(padding="VALID"), **_bias_relu("Relu")},
                  note="row passes (loop cap): bias in the first, Relu in the last"),
    IntegerValued([_x((1, 250, 250, 4)), _x((250, 250, 4, 1)), _x((4,)), _x((1, 1, 1, 4))],
                  {**_a(padding="VALID"), "fused_ops": ["BiasAdd", "Add", "Relu"], "num_args": 2},
                  note="row passes (loop cap): the residual and Relu in the last only"),
    Case([_x((1, 5, 6, 3)), _x((3, 3, 3, 2)), _x((6,)), _x((1, 5, 6, 6))],
         {**_a(), "fused_ops": ["BiasAdd", "Add", "Relu6"], "num_args": 2},
         note="multiplier 2, 6 channels (padded residual)"),
]

_TOL = (2e-5, "sums of up to 9*12 float32 products in another order than the float64 reference (a few ULP "
              "of the summed magnitudes), batch-norm scale folded into the filter, then exp/tanh")

register("Conv2D", reference=nhwc_reference(_conv_nhwc), shape=_conv_shape, lower=_lower_conv,
         host_inputs=(1,), cases=_CONV_CASES, tol=_TOL, grad=_nhwc_grad(_conv_grad_nhwc), rows=DATA)
register("_FusedConv2D", reference=_fused(_conv_nhwc), shape=_conv_shape, lower=_lower_conv,
         host_inputs=(1, 2, 3, 4, 5, 6), device_inputs=fused.residual_input, cases=_FUSED_CONV_CASES, tol=_TOL,
         rows=DATA)
register("DepthwiseConv2dNative", reference=nhwc_reference(_depthwise_nhwc), shape=_depthwise_shape,
         lower=_lower_depthwise, host_inputs=(1,), cases=_DEPTHWISE_CASES, tol=_TOL,
         grad=_nhwc_grad(_depthwise_grad_nhwc), rows=DATA)
register("FusedDepthwiseConv2dNative", reference=_fused(_depthwise_nhwc), shape=_depthwise_shape,
         lower=_lower_depthwise, host_inputs=(1, 2, 3, 4, 5, 6), device_inputs=fused.residual_input,
         cases=_FUSED_DEPTHWISE_CASES, tol=_TOL, rows=DATA)
register("Conv2DBackpropInput", reference=_backprop_input_ref, shape=_backprop_input_shape,
         lower=_lower_backprop_input, host_inputs=(0, 1), cases=_BPI_CASES, tol=_TOL, grad=_backprop_input_grad,
         rows=only_data(2))


# ------------------------------------------------------ Conv3D, Conv1D, Dilation2D (host)
def window_geometry(in_size, k, s, d, padding):
    eff = (k - 1) * d + 1
    if padding == "VALID":
        return max(0, -(-(in_size - eff + 1) // s)), 0, 0
    out = -(-in_size // s)
    total = max((out - 1) * s + eff - in_size, 0)
    return out, total // 2, total - total // 2


def nd_windows(x, ks, st, dl, padding, fill):
    """For [N, *spatial, C] input: the output spatial shape and, per kernel offset, the strided
    view of the padded input it reads ([N, *out, C]) plus a mask of real (not padded) elements."""
    geo = [window_geometry(n, k, s, d, padding) for n, k, s, d in zip(x.shape[1:-1], ks, st, dl)]
    pads = [(0, 0)] + [(lo, hi) for _, lo, hi in geo] + [(0, 0)]
    xp = np.pad(x, pads, constant_values=fill)
    real = np.pad(np.ones(x.shape[1:-1], bool), pads[1:-1])
    outs = [o for o, _, _ in geo]
    views = []
    for off in itertools.product(*(range(k) for k in ks)):
        sl = tuple(slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, n, s in zip(off, dl, outs, st))
        views.append((off, xp[(slice(None), *sl)], real[sl]))
    return outs, views


def spatial_attr(attrs, key, rank, default=1):
    v = attrs.get(key)
    if v is None:
        return [default] * rank
    v = list(v)
    return v[1:-1] if len(v) == rank + 2 else v


def _conv_nd(x, w, st, dl, padding):
    x64 = x.astype(np.float64)
    outs, views = nd_windows(x64, w.shape[:-2], st, dl, padding, 0.0)
    out = np.zeros((x.shape[0], *outs, w.shape[-1]))
    for off, v, _ in views:
        out += np.tensordot(v, w[off].astype(np.float64), axes=([-1], [0]))
    return out.astype(np.float32)


def _conv3d_ref(attrs, x, w):
    if (attrs.get("data_format") or "NDHWC") != "NDHWC":
        raise ValueError("Conv3D supports NDHWC only")
    return _conv_nd(x, w, spatial_attr(attrs, "strides", 3), spatial_attr(attrs, "dilations", 3),
                    str(attrs.get("padding") or "VALID"))


def _conv1d_ref(attrs, x, w):
    """TF.js's Conv1D (NWC): the converter never writes it (TF lowers conv1d to Conv2D)."""
    st = attrs.get("stride") or attrs.get("strides") or 1
    dl = attrs.get("dilation") or attrs.get("dilations") or 1
    st = st[1] if isinstance(st, (list, tuple)) and len(st) == 3 else st
    dl = dl[1] if isinstance(dl, (list, tuple)) and len(dl) == 3 else dl
    return _conv_nd(x, w, [int(np.reshape(st, -1)[0])], [int(np.reshape(dl, -1)[0])], str(attrs.get("padding") or "VALID"))


def reference_shape(ref):
    def shape(attrs, ins):
        out = ref(attrs, *[np.zeros(t.shape, np.float32) for t in ins])
        return [(out.shape, F)]
    return shape


register("Conv3D", reference=_conv3d_ref, shape=reference_shape(_conv3d_ref), rows=DATA,
         tol=(2e-6, "float64 reference vs TF's float32 sums of a few dozen terms"),
         cases=[Case([normal((1, 4, 5, 5, 2), 1), normal((2, 3, 3, 2, 3), 2)], attrs={"strides": [1, 1, 2, 1, 1],
                                                                                  "padding": "SAME"}),
                Case([normal((2, 3, 4, 4, 1), 3), normal((2, 2, 2, 1, 2), 4)],
                     attrs={"strides": [1, 2, 1, 2, 1], "padding": "VALID"})])   # TF's CPU Conv3D: no dilation
register("Conv1D", reference=_conv1d_ref, shape=reference_shape(_conv1d_ref), rows=DATA,
         cases=[Case([normal((2, 9, 3), 7), normal((3, 3, 4), 8)], attrs={"stride": 2, "padding": "SAME"})])
_dw = REGISTRY["DepthwiseConv2dNative"]
register("DepthwiseConv2d", reference=_dw.reference, shape=_dw.shape, lower=_dw.lower,
         dtypes=_dw.dtypes, cases=[], rows=DATA)     # TF.js's name for it; DepthwiseConv2dNative's cases cover both


def _dilation2d_ref(attrs, x, w):
    st, rt = spatial_attr(attrs, "strides", 2), spatial_attr(attrs, "rates", 2)
    outs, views = nd_windows(x.astype(np.float64), w.shape[:2], st, rt, str(attrs.get("padding") or "VALID"), -np.inf)
    return np.max([v + w[off].astype(np.float64) for off, v, _ in views], axis=0).astype(np.float32)


register("Dilation2D", reference=_dilation2d_ref, shape=reference_shape(_dilation2d_ref), rows=DATA,
         cases=[Case([normal((1, 6, 7, 2), 9), normal((2, 3, 2), 10)],
                     attrs={"strides": [1, 1, 2, 1], "rates": [1, 2, 1, 1], "padding": "SAME"}),
                Case([normal((2, 5, 5, 1), 11), normal((3, 3, 1), 12)],
                     attrs={"strides": [1, 1, 1, 1], "rates": [1, 1, 1, 1], "padding": "VALID"})])

