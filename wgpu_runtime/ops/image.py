"""Image ops (NHWC): ResizeBilinear and ResizeNearestNeighbor with TF's CPU coordinate rules,
DepthToSpace and SpaceToDepth (pure data moves: one strided copy each), CropAndResize
(kernels/crop_and_resize.wgsl, TensorFlow's CPU arithmetic in float32) and
ImageProjectiveTransformV3 (on the host)."""
from __future__ import annotations

import numpy as np

from .common import B, F, I, host_value, normal
from .launch import grid_1d
from .registry import Case, register
from .rows import DATA
from .strided_copy import run_length, view
from .transform import moved_grad

f32 = np.float32


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
    run = run_length(ctx)
    runs = -(-c // run)
    launches = out.size // c * runs
    params = {"n": launches, "c": c, "in_h": in_h, "in_w": in_w, "out_h": out_h, "out_w": out_w,
              "half_pixel": int(half), "runs": runs,
              "scale_y": _scale(in_h, out_h, align), "scale_x": _scale(in_w, out_w, align)}
    if ctx.node.op == "ResizeNearestNeighbor":
        ctx.dispatch("resize_nearest.wgsl", [x, dst], grid_1d(launches), constants={"RUN": run},
                     params={**params, "align_corners": int(align)})
    else:
        ctx.dispatch("resize_bilinear.wgsl", [x, dst], grid_1d(launches), constants={"RUN": run},
                     params=params, template={"T_IN": ctx.wgsl_type(x.dtype)})


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
         host_inputs=(1,), dtypes=(F, I), cases=_resize_cases(), grad=_bilinear_grad, rows=DATA,
         tol=(2e-6, "three lerps in float32 as TF does them; the GPU may fuse a multiply-add (FMA)"))
register("ResizeNearestNeighbor", reference=_nearest_ref, shape=_resize_shape(), lower=_resize_lower,
         host_inputs=(1,), dtypes=(F, I), tol=(0.0, "a copy: exact"), grad=moved_grad("ResizeNearestNeighbor"), rows=DATA,
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
         grad=_inverse_grad(_s2d_ref), rows=DATA,
         cases=[Case([((2, 3, 5, 8), F)], attrs={"block_size": 2}),
                Case([((1, 2, 3, 9), I)], attrs={"block_size": 3}, note="block 3"),
                Case([((1, 1, 1, 4), B)], attrs={"block_size": 2}),
                Case([((1, 2, 2, 12), F)], attrs={"block_size": 2, "data_format": "NHWC"})])
register("SpaceToDepth", reference=_s2d_ref, shape=_s2d_shape, lower=_s2d_lower, dtypes=(F, I, B),
         grad=_inverse_grad(_d2s_ref), rows=DATA,
         cases=[Case([((2, 4, 6, 3), F)], attrs={"block_size": 2}),
                Case([((1, 6, 3, 2), I)], attrs={"block_size": 3}, note="block 3"),
                Case([((1, 2, 2, 1), B)], attrs={"block_size": 2})])


# ---------------------------------------------------------------------------- CropAndResize
def _crop_size(ins) -> tuple[int, int]:
    ch, cw = (int(v) for v in np.reshape(host_value(ins[3], "CropAndResize's crop_size"), -1))
    if ch <= 0 or cw <= 0:
        raise ValueError(f"crop_size must be positive, got {[ch, cw]}")
    return ch, cw


def _crop_shape(attrs, ins):
    ch, cw = _crop_size(ins)
    if ins[0].rank != 4 or ins[1].shape[-1:] != (4,):
        raise ValueError(f"CropAndResize needs a 4-D image and [n, 4] boxes, got {ins[0].shape}, {ins[1].shape}")
    return [((ins[1].shape[0], ch, cw, ins[0].shape[3]), F)]


def _crop_coords(lo, hi, crop, size):
    extent = f32(size - 1)
    if crop > 1:
        scale = f32(f32(hi - lo) * extent) / f32(crop - 1)
        return f32(lo) * extent + np.arange(crop, dtype=f32) * scale
    return np.full(1, f32(0.5) * f32(lo + hi) * extent, f32)


def _crop_ref(attrs, image, boxes, box_ind, crop_size):
    ch, cw = (int(v) for v in np.reshape(crop_size, -1))
    nearest = str(attrs.get("method") or "bilinear") == "nearest"
    ext = f32(attrs.get("extrapolation_value") or 0.0)
    image = image.astype(f32)
    n, H, W, C = image.shape
    out = np.full((boxes.shape[0], ch, cw, C), ext, f32)
    for k, (y1, x1, y2, x2) in enumerate(boxes.astype(f32)):
        b = int(box_ind[k])
        if not 0 <= b < n:
            raise ValueError(f"box_ind {b} is out of range [0, {n})")
        ys, xs = _crop_coords(y1, y2, ch, H), _crop_coords(x1, x2, cw, W)
        for y, iy in enumerate(ys):
            if iy < 0 or iy > H - 1:
                continue
            for x, ix in enumerate(xs):
                if ix < 0 or ix > W - 1:
                    continue
                if nearest:
                    out[k, y, x] = image[b, int(np.floor(iy + f32(0.5))), int(np.floor(ix + f32(0.5)))]
                    continue
                t, bo, l, r = int(np.floor(iy)), int(np.ceil(iy)), int(np.floor(ix)), int(np.ceil(ix))
                yl, xl = f32(iy - np.floor(iy)), f32(ix - np.floor(ix))
                top = image[b, t, l] + (image[b, t, r] - image[b, t, l]) * xl
                bottom = image[b, bo, l] + (image[b, bo, r] - image[b, bo, l]) * xl
                out[k, y, x] = top + (bottom - top) * yl
    return out


def _crop_lower(ctx):
    image, boxes, box_ind = ctx.inputs[:3]
    out = ctx.outputs[0]
    method = str(ctx.attrs.get("method") or "bilinear")
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"CropAndResize method {method!r} is not bilinear or nearest")
    n, H, W, C = image.shape
    ch, cw = _crop_size(ctx.inputs)
    ctx.dispatch("crop_and_resize.wgsl", [image, boxes, box_ind, ctx.device_output()], grid_1d(out.size),
                 params={"n": out.size, "batch": n, "height": H, "width": W, "channels": C, "crop_h": ch, "crop_w": cw,
                         "extrapolation": float(ctx.attrs.get("extrapolation_value") or 0.0), "opaque": 0},
                 template={"T": ctx.wgsl_type(image.dtype)}, constants={"NEAREST": method == "nearest"})


_BOXES = np.array([[0.1, 0.2, 0.8, 0.9], [0.0, 0.0, 1.0, 1.0], [0.7, 0.6, 0.2, 0.1], [-0.3, 0.25, 0.5, 1.2],
                   [0.5, 0.5, 0.5, 0.5]], np.float32)


def _crop_case(method, crop, image=((2, 6, 7, 3), F), note="", **attrs):
    return Case([image, _BOXES, np.array([0, 1, 1, 0, 1], np.int32), np.array(crop, np.int32)],
                attrs={"method": method, **attrs}, note=note or method)


register("CropAndResize", reference=_crop_ref, shape=_crop_shape, lower=_crop_lower,
         host_inputs=(3,), dtypes=(F,),
         tol=(1e-6, "a few float32 lerps; the GPU may contract them into FMAs"),
         cases=[_crop_case("bilinear", [4, 5], note="flipped and out-of-image boxes"),
                _crop_case("nearest", [3, 4]),
                _crop_case("bilinear", [1, 1], note="crop 1x1: box centres"),
                _crop_case("bilinear", [3, 3], extrapolation_value=-1.0, note="extrapolation value"),
                _crop_case("bilinear", [2, 3], image=((2, 5, 5, 1), I, 0, 255), note="int image (uint8 input)")])


# ---------------------------------------------------------- ImageProjectiveTransformV3 (host)
def _map_coord(c, n, mode):
    """TensorFlow's map_coordinate(): an input coordinate outside [0, n - 1] per fill mode."""
    if mode == "REFLECT":
        if c < 0:
            if n <= 1:
                c = 0.0
            else:
                sz2 = 2 * n
                if c < -sz2:
                    c = sz2 * int(-c / sz2) + c
                c = c + sz2 if c < -n else -c - 1
        elif c > n - 1:
            if n <= 1:
                c = 0.0
            else:
                sz2 = 2 * n
                c -= sz2 * int(c / sz2)
                if c >= n:
                    c = sz2 - c - 1
        return min(max(c, 0.0), n - 1.0)
    if mode == "WRAP":
        if c < 0:
            if n <= 1:
                c = 0.0
            else:
                sz = n - 1
                c += n * (int(-c / sz) + 1)
        elif c > n - 1:
            if n <= 1:
                c = 0.0
            else:
                sz = n - 1
                c -= n * int(c / sz)
        return min(max(c, 0.0), n - 1.0)
    if mode == "NEAREST":
        return min(max(c, 0.0), n - 1.0)
    return c                                            # CONSTANT: outside reads the fill value


def _projective_ref(attrs, images, transforms, output_shape, fill_value):
    oh, ow = (int(v) for v in np.reshape(output_shape, -1))
    mode = str(attrs.get("fill_mode") or "CONSTANT")
    nearest = str(attrs.get("interpolation") or "NEAREST") == "NEAREST"
    fill = f32(np.reshape(fill_value, -1)[0]) if np.size(fill_value) else f32(0)
    n, H, W, C = images.shape
    img = images.astype(f32)
    out = np.zeros((n, oh, ow, C), f32)

    def read(b, y, x):
        if 0 <= y < H and 0 <= x < W:
            return img[b, y, x]
        return np.full(C, fill, f32)

    for b in range(n):
        t = np.asarray(transforms, f32)[b if len(transforms) > 1 else 0]
        for y in range(oh):
            for x in range(ow):
                proj = f32(t[6] * x + t[7] * y + f32(1))
                if proj == 0:
                    out[b, y, x] = fill
                    continue
                in_x = _map_coord(float(f32((t[0] * x + t[1] * y + t[2]) / proj)), W, mode)
                in_y = _map_coord(float(f32((t[3] * x + t[4] * y + t[5]) / proj)), H, mode)
                if nearest:
                    out[b, y, x] = read(b, int(np.floor(in_y + 0.5)) if in_y >= 0 else -int(np.floor(-in_y + 0.5)),
                                        int(np.floor(in_x + 0.5)) if in_x >= 0 else -int(np.floor(-in_x + 0.5)))
                    continue
                y0, x0 = int(np.floor(in_y)), int(np.floor(in_x))
                y1, x1 = y0 + 1, x0 + 1
                wy1, wx1 = f32(in_y - y0), f32(in_x - x0)
                wy0, wx0 = f32(1) - wy1, f32(1) - wx1
                top = wx0 * read(b, y0, x0) + wx1 * read(b, y0, x1)
                bottom = wx0 * read(b, y1, x0) + wx1 * read(b, y1, x1)
                out[b, y, x] = wy0 * top + wy1 * bottom
    return out.astype(images.dtype)


def _projective_case(mode, interp, note):
    t = np.array([[1.1, 0.2, -1.0, -0.15, 0.9, 1.5, 0.01, -0.02]], np.float32)
    return Case([normal((1, 5, 6, 2), 16), t, np.array([6, 7], np.int32), np.array(-1.0, np.float32)],
                attrs={"fill_mode": mode, "interpolation": interp, "dtype": "float32"}, note=note)


register("ImageProjectiveTransformV3", reference=_projective_ref,
         shape=lambda attrs, ins: [((ins[0].shape[0], *(int(v) for v in np.reshape(host_value(ins[2], "output_shape"), -1)),
                                     ins[0].shape[3]), ins[0].dtype)],
         host_inputs=(2,), tol=(2e-6, "bilinear weights of a projected coordinate in float32"),
         cases=[_projective_case("CONSTANT", "NEAREST", "constant fill, nearest"),
                _projective_case("CONSTANT", "BILINEAR", "constant fill, bilinear"),
                _projective_case("REFLECT", "BILINEAR", "reflect"),
                _projective_case("WRAP", "NEAREST", "wrap"),
                _projective_case("NEAREST", "BILINEAR", "nearest fill")])
