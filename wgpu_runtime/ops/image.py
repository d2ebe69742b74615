"""Image ops (NHWC): ResizeBilinear and ResizeNearestNeighbor with TF's CPU coordinate rules,
DepthToSpace and SpaceToDepth (pure data moves: one strided copy each)."""
from __future__ import annotations

import numpy as np

from .registry import Case, register
from .transform import _moved_grad, grid, run_length, view

F, I, B = "float32", "int32", "bool"


# ------------------------------------------------------------------------------------ resize
def _resize_flags(attrs) -> tuple[bool, bool]:
    align, half = bool(attrs.get("align_corners")), bool(attrs.get("half_pixel_centers"))
    if align and half:
        raise ValueError("half_pixel_centers=True needs align_corners=False (as in TF)")
    return align, half


def _scale(in_size: int, out_size: int, align: bool) -> np.float32:
    """TF's CalculateResizeScale, in float32."""
    if align and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def _resize_shape(out_dtype=None):
    def shape(attrs, ins):
        _resize_flags(attrs)
        x = ins[0]
        if x.rank != 4:
            raise ValueError(f"images must be 4-D NHWC, got shape {x.shape}")
        if ins[1].value is None:
            raise ValueError("the output size must be known before running (a constant or shape arithmetic)")
        h, w = (int(v) for v in np.reshape(ins[1].value, -1))
        if h <= 0 or w <= 0:
            raise ValueError(f"output size {h}x{w} must be positive")
        return [((x.shape[0], h, w, x.shape[3]), out_dtype or x.dtype)]
    return shape


def _resize_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    align, half = _resize_flags(ctx.attrs)
    n, in_h, in_w, c = x.shape
    out_h, out_w = out.shape[1:3]
    dst = ctx.device_output()
    if out.size == 0:
        return
    sy, sx = _scale(in_h, out_h, align), _scale(in_w, out_w, align)
    run = run_length(ctx)
    runs = -(-c // run)
    launches = out.size // c * runs
    if ctx.node.op == "ResizeNearestNeighbor":
        ctx.dispatch("resize_nearest.wgsl", [x, dst], grid(launches), constants={"RUN": run},
                     params=[launches, c, in_h, in_w, out_h, out_w, int(align), int(half), sy, sx, runs, 0])
    else:
        ctx.dispatch("resize_bilinear.wgsl", [x, dst], grid(launches), constants={"RUN": run},
                     params=[launches, c, in_h, in_w, out_h, out_w, int(half), runs, sy, sx, 0, 0],
                     template={"T_IN": ctx.wgsl_type(x.dtype)})


def _bilinear_axis(out_size, in_size, align, half):
    """TF's compute_interpolation_weights: (lower, upper, lerp) per output index, in float32."""
    scale = _scale(in_size, out_size, align)
    o = np.arange(out_size, dtype=np.float32)
    x = (o + np.float32(0.5)) * scale - np.float32(0.5) if half else o * scale
    f = np.floor(x)
    lower = np.maximum(f.astype(np.int64), 0)
    upper = np.minimum(np.ceil(x).astype(np.int64), in_size - 1)
    return lower, upper, (x - f).astype(np.float32)


def _bilinear_ref(attrs, images, size):
    align, half = _resize_flags(attrs)
    out_h, out_w = (int(v) for v in np.reshape(size, -1))
    img = images.astype(np.float32)
    yl, yu, ly = _bilinear_axis(out_h, images.shape[1], align, half)
    xl, xu, lx = _bilinear_axis(out_w, images.shape[2], align, half)
    lx = lx[None, None, :, None]
    ly = ly[None, :, None, None]
    tl, tr = img[:, yl][:, :, xl], img[:, yl][:, :, xu]
    bl, br = img[:, yu][:, :, xl], img[:, yu][:, :, xu]
    top = tl + (tr - tl) * lx
    bottom = bl + (br - bl) * lx
    return top + (bottom - top) * ly


def _nearest_axis(out_size, in_size, align, half):
    """TF's nearest-neighbour source index per output index (float32; roundf: halves away from 0)."""
    scale = _scale(in_size, out_size, align)
    o = np.arange(out_size, dtype=np.float32)
    x = (o + np.float32(0.5)) * scale if half else o * scale
    i = np.floor(x.astype(np.float64) + 0.5) if align else np.floor(x)   # x >= 0; exact in float64
    return np.minimum(i.astype(np.int64), in_size - 1)


def _nearest_ref(attrs, images, size):
    align, half = _resize_flags(attrs)
    out_h, out_w = (int(v) for v in np.reshape(size, -1))
    ys = _nearest_axis(out_h, images.shape[1], align, half)
    xs = _nearest_axis(out_w, images.shape[2], align, half)
    return images[:, ys][:, :, xs]


def _bilinear_grad(attrs, ins, outs, dys):
    """Bilinear resizing is linear, one interpolation matrix per axis: dx = Wy^T dy Wx."""
    images = ins[0]
    if images.dtype.kind != "f":
        return [None, None]
    align, half = _resize_flags(attrs)
    mats = []
    for out_size, in_size in ((dys[0].shape[1], images.shape[1]), (dys[0].shape[2], images.shape[2])):
        lo, hi, frac = _bilinear_axis(out_size, in_size, align, half)
        m = np.zeros((out_size, in_size), np.float32)
        np.add.at(m, (np.arange(out_size), lo), 1 - frac)
        np.add.at(m, (np.arange(out_size), hi), frac)
        mats.append(m)
    return [np.einsum("oh,nopc,pw->nhwc", mats[0], dys[0], mats[1]).astype(images.dtype), None]


_FLAGS = [{}, {"align_corners": True}, {"half_pixel_centers": True}]
_SIZES = [((1, 5, 7, 3), (9, 13), "upscale, odd sizes"), ((2, 9, 11, 2), (4, 5), "downscale, odd sizes"),
          ((1, 4, 4, 1), (8, 8), "2x"), ((1, 1, 3, 2), (1, 5), "a size-1 dim"),
          ((1, 6, 6, 3), (3, 3), "2x down"), ((1, 3, 5, 1), (7, 2), "up and down"),
          ((1, 3, 4, 37), (5, 3), "37 channels: several runs")]


def _resize_cases():
    cases = [Case([(shape, F), np.array(size, np.int32)], attrs=dict(flags), note=f"{note} {flags}")
             for shape, size, note in _SIZES for flags in _FLAGS]
    return cases + [Case([((1, 5, 6, 2), I, -50, 50), np.array([8, 4], np.int32)], attrs=dict(flags),
                         note=f"int32 {flags}") for flags in _FLAGS]


register("ResizeBilinear", reference=_bilinear_ref, shape=_resize_shape(F), lower=_resize_lower,
         host_inputs=(1,), dtypes=(F, I), cases=_resize_cases(), grad=_bilinear_grad,
         tol=(2e-6, "three lerps in float32 as TF does them; the GPU may fuse a multiply-add (FMA)"))
register("ResizeNearestNeighbor", reference=_nearest_ref, shape=_resize_shape(), lower=_resize_lower,
         host_inputs=(1,), dtypes=(F, I), tol=(0.0, "a copy: exact"), grad=_moved_grad("ResizeNearestNeighbor"),
         cases=_resize_cases() + [
             Case([((1, 3, 3, 1), F), np.array([5, 4], np.int32)], attrs={"align_corners": True},
                  note="align_corners at exact .5: roundf rounds up"),
             Case([((1, 7, 7, 1), F), np.array([3, 5], np.int32)], attrs={"half_pixel_centers": True},
                  note="half_pixel downscale")])


# -------------------------------------------------------------------- depth <-> space (NHWC)
def _block(attrs, shape) -> int:
    fmt = attrs.get("data_format") or "NHWC"
    if fmt != "NHWC":
        raise ValueError(f"data_format {fmt} is not supported (TF's CPU kernels support NHWC only)")
    bs = int(attrs.get("block_size") or 0)
    if bs < 2:
        raise ValueError(f"block_size must be at least 2, got {bs}")
    if len(shape) != 4:
        raise ValueError(f"input must be 4-D NHWC, got shape {shape}")
    return bs


def _d2s_shape(attrs, ins):
    n, h, w, c = ins[0].shape
    bs = _block(attrs, ins[0].shape)
    if c % (bs * bs):
        raise ValueError(f"depth {c} is not divisible by block_size^2 = {bs * bs}")
    return [((n, h * bs, w * bs, c // (bs * bs)), ins[0].dtype)]


def _s2d_shape(attrs, ins):
    n, h, w, c = ins[0].shape
    bs = _block(attrs, ins[0].shape)
    if h % bs or w % bs:
        raise ValueError(f"height {h} and width {w} must be divisible by block_size {bs}")
    return [((n, h // bs, w // bs, c * bs * bs), ins[0].dtype)]


def _d2s_lower(ctx):
    n, h, w, c = ctx.inputs[0].shape
    bs = _block(ctx.attrs, (n, h, w, c))
    co = c // (bs * bs)
    # out[n, y*bs + by, x*bs + bx, k] = in[n, y, x, (by*bs + bx)*co + k]: iterate (n, y, by, x, bx, k)
    view(ctx, (n, h, bs, w, bs, co), (h * w * c, w * c, bs * co, c, co, 1))


def _s2d_lower(ctx):
    n, h, w, c = ctx.inputs[0].shape
    bs = _block(ctx.attrs, (n, h, w, c))
    # out[n, y, x, (by*bs + bx)*c + k] = in[n, y*bs + by, x*bs + bx, k]: iterate (n, y, x, by, bx, k)
    view(ctx, (n, h // bs, w // bs, bs, bs, c), (h * w * c, bs * w * c, bs * c, w * c, c, 1))


def _d2s_ref(attrs, x):
    n, h, w, c = x.shape
    bs = int(attrs["block_size"])
    y = x.reshape(n, h, w, bs, bs, c // (bs * bs)).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * bs, w * bs, c // (bs * bs))


def _s2d_ref(attrs, x):
    n, h, w, c = x.shape
    bs = int(attrs["block_size"])
    y = x.reshape(n, h // bs, bs, w // bs, bs, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h // bs, w // bs, bs * bs * c)


def _inverse_grad(inverse):   # DepthToSpace and SpaceToDepth undo each other (same block size)
    return lambda attrs, ins, outs, dys: [inverse(attrs, dys[0]) if ins[0].dtype.kind == "f" else None]


register("DepthToSpace", reference=_d2s_ref, shape=_d2s_shape, lower=_d2s_lower, dtypes=(F, I, B),
         grad=_inverse_grad(_s2d_ref),
         cases=[Case([((2, 3, 5, 8), F)], attrs={"block_size": 2}),
                Case([((1, 2, 3, 9), I)], attrs={"block_size": 3}, note="block 3"),
                Case([((1, 1, 1, 4), B)], attrs={"block_size": 2}),
                Case([((1, 2, 2, 12), F)], attrs={"block_size": 2, "data_format": "NHWC"})])
register("SpaceToDepth", reference=_s2d_ref, shape=_s2d_shape, lower=_s2d_lower, dtypes=(F, I, B),
         grad=_inverse_grad(_d2s_ref),
         cases=[Case([((2, 4, 6, 3), F)], attrs={"block_size": 2}),
                Case([((1, 6, 3, 2), I)], attrs={"block_size": 3}, note="block 3"),
                Case([((1, 2, 2, 1), B)], attrs={"block_size": 2})])
