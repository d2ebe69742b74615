"""Numeric ops of the official converter's op list beyond the core families: OneHot, Cumsum /
Cumprod, BroadcastTo, Einsum, CropAndResize (this file's first half, all on the GPU), then the
rarer ones (second half of the file).

* OneHot: kernels/dyn_onehot.wgsl, one invocation per output element.
* Cumsum / Cumprod: kernels/dyn_scan.wgsl, one invocation per column walking the axis in order
  (TensorFlow's CPU kernel accumulates sequentially in the element type too).
* BroadcastTo: one strided copy (stride 0 along broadcast dims), an alias when nothing grows.
* Einsum (one or two operands, ellipsis, repeated labels): each operand becomes one strided copy
  into [batch, free, contracted, summed-away] order (a repeated label is a diagonal: the strides
  of its positions add up), labels only one operand has and the output lacks are summed away
  with the reduction kernels, then the product is the BatchMatMulV2 lowering (broadcasting
  batch dims) and one copy puts the result in output order. No copy is made where the order
  already matches.
* CropAndResize: kernels/dyn_crop_resize.wgsl, TensorFlow's CPU arithmetic in float32.
"""
from __future__ import annotations

import numpy as np

from .registry import REGISTRY, Case, Tensor, register
from .shapes import broadcast, broadcast_strides, normalize_axis, strides
from .transform import copy, grid

F, I, B = "float32", "int32", "bool"
f32 = np.float32


def _host(t, what):
    if t.value is None:
        raise ValueError(f"{what} must be known before running (a constant or shape arithmetic)")
    return t.value


def _prod(xs) -> int:
    return int(np.prod(xs, dtype=np.int64))


def _q(shape, seed, levels=8):
    """Multiples of 1/4 in [-levels/4, levels/4]: sums and products stay exact in float32."""
    return (np.random.default_rng(seed).integers(-levels, levels + 1, size=shape) / 4).astype(np.float32)


# ----------------------------------------------------------------------------------- OneHot
def _onehot_axis(attrs, rank: int) -> int:
    axis = int(attrs.get("axis") if attrs.get("axis") is not None else -1)
    if axis == -1:
        return rank
    if not 0 <= axis <= rank:
        raise ValueError(f"OneHot axis {axis} is out of range for indices of rank {rank}")
    return axis


def _onehot_shape(attrs, ins):
    depth = int(np.reshape(_host(ins[1], "OneHot's depth"), -1)[0])
    if depth < 0:
        raise ValueError(f"OneHot depth must be >= 0, got {depth}")
    shape = ins[0].shape
    a = _onehot_axis(attrs, len(shape))
    return [(shape[:a] + (depth,) + shape[a:], ins[2].dtype)]


def _onehot_ref(attrs, idx, depth, on, off):
    depth = int(np.reshape(depth, -1)[0])
    hot = np.asarray(idx)[..., None] == np.arange(depth)
    hot = np.moveaxis(hot, -1, _onehot_axis(attrs, np.ndim(idx)))
    return np.where(hot, on, off).astype(np.asarray(on).dtype)


def _onehot_lower(ctx):
    idx, out = ctx.inputs[0], ctx.outputs[0]
    dst = ctx.device_output()
    if out.size == 0:
        return
    a = _onehot_axis(ctx.attrs, idx.rank)
    depth = out.shape[a]
    ctx.dispatch("dyn_onehot.wgsl", [idx, ctx.inputs[2], ctx.inputs[3], dst], grid(out.size),
                 params=[out.size, depth, _prod(idx.shape[a:]), 0], template={"T": ctx.wgsl_type(out.dtype)})


def _onehot_case(idx, depth, on, off, **attrs):
    return Case([np.array(idx, np.int32), np.array(depth, np.int32), np.array(on), np.array(off)], attrs=attrs,
                note=f"axis {attrs.get('axis', -1)}")


register("OneHot", reference=_onehot_ref, shape=_onehot_shape, lower=_onehot_lower,
         host_inputs=(1,), dtypes=(F, I, B),
         cases=[_onehot_case([0, 2, 1, 5, -1], 4, np.float32(1), np.float32(0)),
                _onehot_case([[1, 0], [3, 2]], 3, np.float32(2.5), np.float32(-1), axis=0),
                _onehot_case([[1, 0, 2], [2, 2, 7]], 3, np.int32(9), np.int32(4), axis=1),
                _onehot_case([0, 1], 2, np.bool_(True), np.bool_(False)),
                _onehot_case(3, 5, np.float32(1), np.float32(0))])


# ----------------------------------------------------------------------------- Cumsum/Cumprod
def _scan_ref(prod):
    def ref(attrs, x, axis):
        axis = normalize_axis(int(np.reshape(axis, -1)[0]), x.ndim)
        y = np.flip(x, axis) if attrs.get("reverse") else x
        fn = np.cumprod if prod else np.cumsum
        out = fn(y, axis=axis, dtype=x.dtype)          # sequential, in the element type
        if attrs.get("exclusive"):
            ident = np.ones_like if prod else np.zeros_like
            first = ident(np.take(out, [0], axis=axis)) if x.shape[axis] else np.take(out, [], axis=axis)
            out = np.concatenate([first, np.take(out, range(x.shape[axis] - 1), axis=axis)], axis=axis)
        return np.flip(out, axis) if attrs.get("reverse") else out
    return ref


def _scan_lower(prod):
    def lower(ctx):
        x = ctx.inputs[0]
        dst = ctx.device_output()
        if x.size == 0:
            return
        axis = normalize_axis(int(np.reshape(ctx.value(1), -1)[0]), x.rank)
        n = x.shape[axis]
        if n > 65535 and ctx.device.is_software:
            raise ValueError(f"{ctx.node.op} along an axis of {n} > 65535 elements exceeds llvmpipe's "
                             "loop limit per invocation")
        inner = _prod(x.shape[axis + 1:])
        cols = x.size // n
        T = ctx.wgsl_type(x.dtype)
        init = ("1" if x.dtype == I else "1.0") if prod else ("0" if x.dtype == I else "0.0")
        ctx.dispatch("dyn_scan.wgsl", [x, dst], grid(cols),
                     params=[cols, n, inner, int(bool(ctx.attrs.get("exclusive"))),
                             int(bool(ctx.attrs.get("reverse"))), 0, 0, 0],
                     template={"T": T, "OP": "acc * v" if prod else "acc + v", "INIT": f"{T}({init})"})
    return lower


def _scan_cases(prod):
    hi = 1.5 if prod else 2.0
    return [Case([((4, 7), F, -hi, hi), np.array(1, np.int32)], note="last axis"),
            Case([((5, 3, 2), F, -hi, hi), np.array(1, np.int32)], attrs={"exclusive": True}, note="exclusive"),
            Case([((6, 4), I, -3, 3), np.array(0, np.int32)], attrs={"reverse": True}, note="reverse, int32"),
            Case([((3, 5), F, -hi, hi), np.array(-1, np.int32)], attrs={"exclusive": True, "reverse": True},
                 note="exclusive + reverse"),
            Case([((0, 3), F), np.array(0, np.int32)], note="empty")]


for _name, _prod_op in (("Cumsum", False), ("Cumprod", True)):
    register(_name, reference=_scan_ref(_prod_op),
             shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_scan_lower(_prod_op),
             host_inputs=(1,), dtypes=(F, I), cases=_scan_cases(_prod_op),
             tol=(1e-6, "sequential float32 accumulation as TF's; products of a few factors"))


# ------------------------------------------------------------------------------ BroadcastTo
def _broadcast_shape(attrs, ins):
    shape = tuple(int(d) for d in np.reshape(_host(ins[1], "BroadcastTo's shape"), -1))
    out = broadcast(ins[0].shape, shape)
    if out != shape:
        raise ValueError(f"cannot broadcast {ins[0].shape} to {shape}")
    return [(shape, ins[0].dtype)]


def _broadcast_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    if x.size == out.size:
        ctx.alias()
        return
    copy(ctx, x, ctx.device_output(), out.shape, broadcast_strides(x.shape, out.shape))


register("BroadcastTo", reference=lambda attrs, x, s: np.broadcast_to(x, [int(d) for d in np.reshape(s, -1)]).copy(),
         shape=_broadcast_shape, lower=_broadcast_lower, host_inputs=(1,), dtypes=(F, I, B),
         cases=[Case([((3, 1), F), np.array([2, 3, 4], np.int32)]),
                Case([((1, 4), I), np.array([3, 4], np.int32)]),
                Case([((), B), np.array([2, 2], np.int32)], note="scalar"),
                Case([((2, 3), F), np.array([2, 3], np.int32)], note="same shape: alias")])


# ----------------------------------------------------------------------------------- Einsum
def _einsum_terms(equation: str, shapes):
    """Operand label strings (ellipsis expanded, right-aligned) and the output's."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"equation {equation!r} has {len(terms)} operands, got {len(shapes)}")
    ell = max((len(s) - (len(t) - 3) for t, s in zip(terms, shapes) if "..." in t), default=0)
    fresh = [chr(0x3b1 + k) for k in range(ell)]           # greek letters: never in an equation
    out_terms = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            k = len(s) - (len(t) - 3)
            if k < 0:
                raise ValueError(f"operand {t!r} has rank {len(s)}, fewer than its labels")
            t = t.replace("...", "".join(fresh[ell - k:]))
        if len(t) != len(s):
            raise ValueError(f"operand {t!r} does not match its rank {len(s)}")
        out_terms.append(t)
    if arrow:
        out = rhs.replace("...", "".join(fresh))
    else:
        counts = {c: "".join(out_terms).count(c) for c in set("".join(out_terms))}
        out = "".join(fresh) + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in fresh))
    return out_terms, out


def _einsum_spec(equation, shapes):
    terms, out = _einsum_terms(equation, shapes)
    sizes: dict[str, int] = {}
    ops = []
    for t, s in zip(terms, shapes):
        labels, st, own = [], {}, {}
        for c, d, stride in zip(t, s, strides(s)):
            if c in own and own[c] != d:
                raise ValueError(f"label {c!r} has sizes {own[c]} and {d} in one operand")
            own[c] = d
            if c not in st:
                labels.append(c)
            st[c] = st.get(c, 0) + stride
            if sizes.get(c, 1) not in (1, d) and d != 1:
                raise ValueError(f"label {c!r} has sizes {sizes[c]} and {d}")
            sizes[c] = max(sizes.get(c, d), d) if d != 1 else sizes.get(c, 1)
        ops.append((labels, own, st))
    for c in out:
        if not any(c in labels for labels, _, _ in ops):
            raise ValueError(f"output label {c!r} is in no operand")
    if len(set(out)) != len(out):
        raise ValueError(f"output {out!r} repeats a label")
    return ops, out, sizes


def _einsum_shape(attrs, ins):
    _, out, sizes = _einsum_spec(str(attrs.get("equation")), [t.shape for t in ins])
    return [(tuple(sizes[c] for c in out), ins[0].dtype)]


def _einsum_ref(attrs, *xs):
    eq = str(attrs.get("equation"))
    wide = np.float64 if xs[0].dtype.kind == "f" else np.int64
    terms, out = _einsum_terms(eq, [x.shape for x in xs])
    # numpy's einsum does not broadcast size-1 labels across operands: broadcast them first
    _, _, sizes = _einsum_spec(eq, [x.shape for x in xs])
    arrays = [np.broadcast_to(x, [sizes[c] if d == 1 else d for c, d in zip(t, x.shape)]) for t, x in zip(terms, xs)]
    letters = {c: chr(ord("a") + k) for k, c in enumerate(dict.fromkeys("".join(terms) + out))}
    sub = ",".join("".join(letters[c] for c in t) for t in terms) + "->" + "".join(letters[c] for c in out)
    return np.einsum(sub, *[a.astype(wide) for a in arrays]).astype(xs[0].dtype)


def _operand(ctx, i, labels_order, own, st, summed):
    """Input ``i`` as a contiguous tensor of ``labels_order`` dims (its own sizes) with the
    ``summed`` labels (the trailing ones) summed away: the input itself when it already is."""
    from .reduce import reduce_passes

    x = ctx.inputs[i]
    sizes = [own[c] for c in labels_order]
    src_strides = [st[c] for c in labels_order]
    keep = len(labels_order) - len(summed)
    if not summed and src_strides == strides(sizes) and _prod(sizes) == x.size:
        return x, tuple(sizes)
    tmp = ctx.temp(4 * max(1, _prod(sizes)), f"operand{i}")
    copy(ctx, x, tmp, sizes, src_strides)
    if not summed:
        return tmp, tuple(sizes)
    red = ctx.temp(4 * max(1, _prod(sizes[:keep])), f"operand{i}-summed")
    reduce_passes(ctx, tmp, tuple(sizes), tuple(range(keep, len(sizes))), "sum", x.dtype, red)
    return red, tuple(sizes[:keep])


def _einsum_lower(ctx):
    out = ctx.outputs[0]
    ops, out_labels, sizes = _einsum_spec(str(ctx.attrs.get("equation")), [t.shape for t in ctx.inputs])
    dst = ctx.device_output()
    if out.size == 0:
        return
    if any(sizes[c] == 0 for labels, _, _ in ops for c in labels):      # an empty sum: zeros
        copy(ctx, dst, dst, (out.size,), (0,), mode=1, ext=(0,), fill=0)
        return
    if len(ops) == 1:
        labels, own, st = ops[0]
        summed = [c for c in labels if c not in out_labels]
        src, shape = _operand(ctx, 0, list(out_labels) + summed, own, st, summed)
        if src is ctx.inputs[0]:
            ctx.alias()
        else:
            copy(ctx, src, dst, shape, strides(shape))
        return
    (la, own_a, st_a), (lb, own_b, st_b) = ops
    batch = [c for c in out_labels if c in la and c in lb]
    a_free = [c for c in out_labels if c in la and c not in lb]
    b_free = [c for c in out_labels if c in lb and c not in la]
    contract = [c for c in la if c in lb and c not in out_labels]
    a_sum = [c for c in la if c not in lb and c not in out_labels]
    b_sum = [c for c in lb if c not in la and c not in out_labels]
    a, a_shape = _operand(ctx, 0, batch + a_free + contract + a_sum, own_a, st_a, a_sum)
    b, b_shape = _operand(ctx, 1, batch + contract + b_free + b_sum, own_b, st_b, b_sum)
    nb = len(batch)
    M, K, N = _prod([sizes[c] for c in a_free]), _prod([sizes[c] for c in contract]), _prod([sizes[c] for c in b_free])
    a_mat = a_shape[:nb] + (M, K)
    b_mat = b_shape[:nb] + (K, N)
    mm_labels = batch + a_free + b_free
    mm_shape = tuple(sizes[c] for c in batch) + (M, N)
    direct = mm_labels == list(out_labels)
    mm_out = dst if direct else ctx.temp(4 * _prod(mm_shape), "product")
    def tensor(src, shape):
        t = Tensor(shape, ctx.inputs[0].dtype, buf=src.buf if isinstance(src, Tensor) else src)
        if isinstance(src, Tensor) and src.buf is None:      # an input known on the host (a weight)
            t.value, t.weight_key = src.value, src.weight_key
        return t

    ctx.lower_op("BatchMatMulV2", [tensor(a, a_mat), tensor(b, b_mat)], [Tensor(mm_shape, out.dtype, buf=mm_out)],
                 attrs={}, suffix="matmul")
    if not direct:
        full = [sizes[c] for c in mm_labels]
        st = dict(zip(mm_labels, strides(full)))
        copy(ctx, mm_out, dst, out.shape, [st[c] for c in out_labels])


def _einsum_case(eq, *shapes, note="", dtype=F):
    ins = [_q(s, k + 1) if dtype == F else np.random.default_rng(k).integers(-3, 4, s).astype(np.int32)
           for k, s in enumerate(shapes)]
    return Case(ins, attrs={"equation": eq, "N": len(shapes)}, tf_inputs=[list(range(len(shapes)))],
                note=note or eq)


register("Einsum", reference=_einsum_ref, shape=_einsum_shape, lower=_einsum_lower,
         dtypes=(F, I),
         cases=[_einsum_case("ij,jk->ik", (3, 5), (5, 4)),
                _einsum_case("bij,bjk->bik", (2, 3, 5), (2, 5, 4)),
                _einsum_case("bhqd,bhkd->bhqk", (1, 2, 3, 4), (1, 2, 5, 4), note="attention scores"),
                _einsum_case("abc,cd->abd", (2, 3, 4), (4, 5)),
                _einsum_case("ij,ij->i", (4, 6), (4, 6), note="batch + contraction"),
                _einsum_case("i,j->ij", (3,), (4,), note="outer product"),
                _einsum_case("ij,jk->ki", (3, 5), (5, 4), note="transposed output"),
                _einsum_case("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2), note="ellipsis, broadcast batch"),
                _einsum_case("iij,jk->ik", (3, 3, 4), (4, 2), note="diagonal + contraction"),
                _einsum_case("ijk,kl->il", (2, 3, 4), (4, 5), note="a label summed away"),
                _einsum_case("ij->ji", (3, 4), note="transpose"),
                _einsum_case("ii->i", (4, 4), note="diagonal"),
                _einsum_case("ij->", (3, 4), note="total"),
                _einsum_case("bij->bj", (2, 3, 4), note="sum"),
                _einsum_case("ij,jk->ik", (2, 3), (3, 4), dtype=I, note="int32")])


# ---------------------------------------------------------------------------- CropAndResize
def _crop_size(ins) -> tuple[int, int]:
    ch, cw = (int(v) for v in np.reshape(_host(ins[3], "CropAndResize's crop_size"), -1))
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
    dst = ctx.device_output()
    if out.size == 0:
        return
    method = str(ctx.attrs.get("method") or "bilinear")
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"CropAndResize method {method!r} is not bilinear or nearest")
    n, H, W, C = image.shape
    ch, cw = _crop_size(ctx.inputs)
    ctx.dispatch("dyn_crop_resize.wgsl", [image, boxes, box_ind, dst], grid(out.size),
                 params=[out.size, n, H, W, C, ch, cw, float(ctx.attrs.get("extrapolation_value") or 0.0), 0, 0, 0, 0],
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


# ======================================================================= second half: the rest
# Element-wise math on the GPU (elementwise.py's kernels and helpers), data movement through the
# copy engine and existing lowerings, small dedicated kernels (MatrixBandPart, LRN, scatter), and
# host implementations for the rare ones (3-D convolutions and pools, Dilation2D,
# MaxPoolWithArgmax, random sampling, complex numbers and FFTs, bincounts, ScatterNd).
from . import elementwise as _ew  # noqa: E402
from .shapes import vec8  # noqa: E402

# llvmpipe's acos/asin are good to ~1e-4 only: through atan2 instead (~35 ULP measured)
_ATAN2_TOL = (1e-5, "WGSL allows atan2 4096 ULP; llvmpipe measured ~35 ULP (as Atan2)")
_ew.unary("Acos", np.arccos, {F: "atan2(sqrt((1.0 - x) * (1.0 + x)), x)"}, low=-1.0, high=1.0, tol=_ATAN2_TOL)
_ew.unary("Asin", np.arcsin, {F: "atan2(x, sqrt((1.0 - x) * (1.0 + x)))"}, low=-1.0, high=1.0, tol=_ATAN2_TOL)
_ew.unary("Atan", np.arctan, {F: "atan(x)"}, low=-10.0, high=10.0, tol=(2e-6, "atan within a few ULP"))
_ew.unary("Tan", np.tan, {F: "tan(x)"}, low=-1.3, high=1.3, tol=(1e-5, "tan = sin/cos: a few ULP, more near pi/2"))
_ew.unary("Sinh", np.sinh, {F: "0.5 * (exp(x) - exp(-x))"}, low=-5.0, high=5.0,
          tol=(2e-6, "through exp: ~2 ULP of max(1, |y|)"))
_ew.unary("Cosh", np.cosh, {F: "0.5 * (exp(x) + exp(-x))"}, low=-5.0, high=5.0,
          tol=(2e-6, "through exp: ~2 ULP of max(1, |y|)"))
# Kahan's forms: exact near 0 where exp(x) - 1 and log(1 + x) cancel
_ew.unary("Expm1", np.expm1, {F: "select(select((exp(x) - 1.0) * x / log(exp(x)), x, exp(x) == 1.0), "
                                 "exp(x) - 1.0, abs(x) > 0.5)"},
          tol=(2e-6, "Kahan's expm1 through exp/log: a few ULP"),
          extra_cases=[Case([np.array([1e-8, -3e-6, 2e-4, -0.01, 0.3, 20.0], np.float32)], note="tiny arguments")])
_ew.unary("Log1p", np.log1p, {F: "select(select(log(1.0 + x) * x / ((1.0 + x) - 1.0), x, 1.0 + x == 1.0), "
                                 "log(1.0 + x), abs(x) > 0.5)"}, low=-0.9, high=5.0,
          tol=(2e-6, "Kahan's log1p through log: a few ULP"),
          extra_cases=[Case([np.array([1e-8, -3e-6, 2e-4, -0.01, 0.3, 20.0], np.float32)], note="tiny arguments")])
_ew.unary("Asinh", np.arcsinh, {F: "sign(x) * log(abs(x) + sqrt(x * x + 1.0))"}, low=-5.0, high=5.0,
          tol=(2e-6, "through log/sqrt: a few ULP of max(1, |y|)"))
_ew.unary("Acosh", np.arccosh, {F: "log(x + sqrt(x * x - 1.0))"}, low=1.0, high=8.0,
          tol=(2e-6, "through log/sqrt: a few ULP of max(1, |y|)"))
_ew.unary("Atanh", np.arctanh, {F: "0.5 * log((1.0 + x) / (1.0 - x))"}, low=-0.95, high=0.95,
          tol=(2e-6, "through log: a few ULP of max(1, |y|)"))

_SPECIAL = np.array([0.0, -1.5, np.nan, np.inf, -np.inf, 3e38, -0.0, 1e-40], np.float32)
for _name, _fn, _expr in (
        ("IsNan", np.isnan, "u32((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u)"),
        ("IsInf", np.isinf, "u32((bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u)"),
        ("IsFinite", np.isfinite, "u32((bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u)")):
    # on the bits: WGSL compilers may assume no NaN/inf in float comparisons
    register(_name, reference=lambda attrs, x, fn=_fn: fn(x),
             shape=lambda attrs, ins: [(ins[0].shape, B)], lower=_ew._lower_unary({F: _expr}), dtypes=(F,),
             cases=[Case([_SPECIAL]), Case([((3, 4), F)]), Case([((0,), F)], note="empty")])

_ew.binary("Mod", np.fmod, {F: "a - b * trunc(a / b)",
                            I: "select(-i32(u32(abs(a)) % u32(abs(b))), i32(u32(abs(a)) % u32(abs(b))), a >= 0)"},
           b_range=(1.0, 3.0), tol=(1e-5, "fmod through one rounded division"),
           extra_cases=[Case([np.array([-7, 7, -7, 7, 0], np.int32), np.array([2, -2, -2, 2, 3], np.int32)],
                             note="signs: the result has the dividend's")])
_ew.binary("BitwiseAnd", np.bitwise_and, {I: "a & b"}, low=-100, high=100)


def _clip_lower(ctx):
    t, lo, hi = ctx.inputs
    out = ctx.outputs[0]
    ctx.device_output()
    if out.size == 0:
        return
    tmp = Tensor(out.shape, out.dtype, buf=ctx.temp(4 * out.size, "clipped-below"))
    _ew.lower_binary(ctx, "max(a, b)", t, lo, tmp)
    _ew.lower_binary(ctx, "min(a, b)", tmp, hi, out)


register("ClipByValue", reference=lambda attrs, t, lo, hi: np.minimum(np.maximum(t, lo), hi).astype(t.dtype),
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_clip_lower, dtypes=(F, I),
         cases=[Case([((4, 5), F), np.array(-0.5, np.float32), np.array(0.7, np.float32)], note="scalar bounds"),
                Case([((3, 4), F), ((3, 4), F, -1, 0), ((3, 4), F, 0, 1)], note="element-wise bounds"),
                Case([((6,), I, -9, 9), np.array(-2, np.int32), np.array(3, np.int32)], note="int32")])


def _fake_quant_params(attrs, lo, hi):
    """TensorFlow's Nudge(): the range moved so that zero is exactly representable."""
    bits, narrow = int(attrs.get("num_bits") or 8), bool(attrs.get("narrow_range"))
    qmin, qmax = f32(1 if narrow else 0), f32((1 << bits) - 1)
    lo, hi = f32(np.reshape(lo, -1)[0]), f32(np.reshape(hi, -1)[0])
    scale = f32((hi - lo) / (qmax - qmin))
    zero = f32(qmin - lo / scale)
    nudged_zero = qmin if zero < qmin else qmax if zero > qmax else f32(np.round(zero))
    return f32((qmin - nudged_zero) * scale), f32((qmax - nudged_zero) * scale), scale


def _fake_quant_ref(attrs, x, lo, hi):
    nmin, nmax, scale = _fake_quant_params(attrs, lo, hi)
    clamped = np.clip(x, nmin, nmax)
    return (np.floor((clamped - nmin) / scale + f32(0.5)) * scale + nmin).astype(f32)


def _fake_quant_lower(ctx):
    nmin, nmax, scale = _fake_quant_params(ctx.attrs, ctx.value(1), ctx.value(2))
    lit = {k: repr(float(v)) for k, v in (("lo", nmin), ("hi", nmax), ("s", scale))}
    expr = f"floor((clamp(x, {lit['lo']}, {lit['hi']}) - {lit['lo']}) / {lit['s']} + 0.5) * {lit['s']} + {lit['lo']}"
    _ew._lower_unary({F: expr})(ctx)


register("FakeQuantWithMinMaxVars", reference=_fake_quant_ref,
         shape=lambda attrs, ins: [(ins[0].shape, F)], lower=_fake_quant_lower, host_inputs=(1, 2),
         tol=(1e-6, "one rounding of a quantization step; values on a step edge may round either way"),
         cases=[Case([_q((4, 9), 1) + np.float32(0.01), np.array(-1.0, np.float32), np.array(1.5, np.float32)]),
                Case([_q((20,), 2) + np.float32(0.03), np.array(-0.3, np.float32), np.array(2.0, np.float32)],
                     attrs={"num_bits": 4, "narrow_range": True}, note="4 bits, narrow range")])


# ------------------------------------------------------------------------ views and movement
def _alias(ctx):
    for i in range(len(ctx.outputs)):
        ctx.alias(i, i)


register("IdentityN", reference=lambda attrs, *xs: tuple(xs),
         shape=lambda attrs, ins: [(t.shape, t.dtype) for t in ins], lower=_alias, dtypes=(F, I, B),
         cases=[Case([((2, 3), F), ((4,), I)], tf_inputs=[[0, 1]])])
register("PlaceholderWithDefault", reference=lambda attrs, x: x,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_alias, dtypes=(F, I, B),
         cases=[Case([((2, 3), F)], attrs={"shape": [2, 3]})])
register("Print", reference=lambda attrs, x, *data: x,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=lambda ctx: ctx.alias(), dtypes=(F, I, B))
register("ShapeN", reference=lambda attrs, *xs: tuple(np.array(np.shape(x), np.int32) for x in xs),
         shape=lambda attrs, ins: [((t.rank,), I) for t in ins], shape_only=True, dtypes=(F, I, B),
         cases=[Case([((2, 3), F), ((4, 1, 5), F)], tf_inputs=[[0, 1]])])


def _ensure_shape(attrs, ins):
    want = attrs.get("shape")
    if want is not None and (len(want) != ins[0].rank or any(w not in (-1, d) for w, d in zip(want, ins[0].shape))):
        raise ValueError(f"EnsureShape: shape {ins[0].shape} is not compatible with {list(want)}")
    return [(ins[0].shape, ins[0].dtype)]


register("EnsureShape", reference=lambda attrs, x: x, shape=_ensure_shape,
         lower=lambda ctx: ctx.alias(), dtypes=(F, I, B),
         cases=[Case([((2, 3), F)], attrs={"shape": [-1, 3]})])
register("BroadcastArgs", reference=lambda attrs, a, b: np.array(broadcast(tuple(a), tuple(b)), a.dtype),
         shape=lambda attrs, ins: [((max(ins[0].size, ins[1].size),), I)], dtypes=(I,),
         cases=[Case([np.array([2, 1, 3], np.int32), np.array([4, 1], np.int32)])])
register("Const", reference=lambda attrs: (_ for _ in ()).throw(
    ValueError("a Const's value is its weight")), shape=lambda attrs, ins: [], dtypes=(F, I, B))
register("Placeholder", reference=lambda attrs: (_ for _ in ()).throw(
    ValueError("a Placeholder is fed")), shape=lambda attrs, ins: [], dtypes=(F, I, B))


def _concat_v1_shape(attrs, ins):
    return REGISTRY["ConcatV2"].shape(attrs, [*ins[1:], ins[0]])


register("Concat", reference=lambda attrs, axis, *xs: np.concatenate(xs, axis=int(np.reshape(axis, -1)[0])),
         shape=_concat_v1_shape, lower=lambda ctx: ctx.lower_op("ConcatV2", [*ctx.inputs[1:], ctx.inputs[0]]),
         host_inputs=(0,), dtypes=(F, I, B),
         cases=[Case([np.array(1, np.int32), ((2, 3), F), ((2, 2), F)], tf_inputs=[0, [1, 2]])])


def _axis0():
    return Tensor((), I, value=np.array(0, np.int32))


register("Gather", reference=lambda attrs, p, i: np.take(p, i, axis=0),
         shape=lambda attrs, ins: REGISTRY["GatherV2"].shape({}, [*ins, _axis0()]),
         lower=lambda ctx: ctx.lower_op("GatherV2", [*ctx.inputs, _axis0()]), dtypes=(F, I, B),
         cases=[Case([((5, 3), F), ((2, 2), I, 0, 4)])])


def _reverse_axes(ctx_or_ins, op, rank):
    t = ctx_or_ins[1]
    v = np.reshape(_host(t, "the reversed axes"), -1)
    if op == "Reverse":
        if v.size != rank:
            raise ValueError(f"Reverse needs {rank} booleans, got {v.size}")
        return {k for k in range(rank) if v[k]}
    return {normalize_axis(int(a), rank) for a in v}


def _reverse_lower(ctx):
    x = ctx.inputs[0]
    axes = _reverse_axes(ctx.inputs, ctx.node.op, x.rank)
    if not any(x.shape[a] > 1 for a in axes) or x.size == 0:
        ctx.alias()
        return
    st = strides(x.shape)
    base = sum((x.shape[a] - 1) * st[a] for a in axes)
    copy(ctx, x, ctx.device_output(), x.shape, [-s if a in axes else s for a, s in enumerate(st)], src_base=base)


def _reverse_ref(attrs, x, axes):
    v = np.reshape(axes, -1)
    ax = [k for k in range(x.ndim) if v[k]] if v.dtype == np.bool_ else [int(a) % x.ndim for a in v]
    return np.flip(x, ax).copy() if ax else x


register("ReverseV2", reference=_reverse_ref,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_reverse_lower, host_inputs=(1,),
         dtypes=(F, I, B),
         cases=[Case([((3, 4, 5), F), np.array([0, 2], np.int32)]), Case([((6,), I), np.array([-1], np.int32)]),
                Case([((2, 3), B), np.array([], np.int32)], note="no axes: alias")])
register("Reverse", reference=_reverse_ref,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_reverse_lower, host_inputs=(1,),
         dtypes=(F, I, B), cases=[Case([((3, 4), F), np.array([True, False])]),
                                  Case([((2, 3, 2), I), np.array([False, True, True])])])


def _band_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    dst = ctx.device_output()
    if out.size == 0:
        return
    lo, up = (int(np.reshape(ctx.value(k), -1)[0]) for k in (1, 2))
    ctx.dispatch("dyn_band.wgsl", [x, dst], grid(out.size), params=[out.size, x.shape[-2], x.shape[-1], 0, lo, up, 0, 0],
                 template={"T": ctx.wgsl_type(x.dtype)})


def _band_ref(attrs, x, lo, up):
    lo, up = int(np.reshape(lo, -1)[0]), int(np.reshape(up, -1)[0])
    i, j = np.indices(x.shape[-2:])
    keep = ((lo < 0) | (i - j <= lo)) & ((up < 0) | (j - i <= up))
    return np.where(keep, x, np.zeros((), x.dtype))


register("MatrixBandPart", reference=_band_ref,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_band_lower, host_inputs=(1, 2),
         dtypes=(F, I), cases=[Case([((2, 4, 5), F), np.array(1, np.int32), np.array(2, np.int32)]),
                               Case([((5, 3), I), np.array(-1, np.int32), np.array(0, np.int32)], note="lower triangle"),
                               Case([((3, 3), F), np.array(0, np.int32), np.array(-1, np.int32)], note="upper")])


def _euclid_lower(ctx):
    from .reduce import reduce_passes, reduction_axes

    x, out = ctx.inputs[0], ctx.outputs[0]
    dst = ctx.device_output()
    if out.size == 0:
        return
    axes = reduction_axes(ctx.value(1), x.rank)
    sq = ctx.temp(4 * out.size, "sum-of-squares")
    zero = ctx.constant(np.zeros(1, np.float32), F, "euclidean-zero-centre")
    reduce_passes(ctx, x, x.shape, axes, "sum", F, sq, center=zero, center_mod=1)
    ctx.dispatch("unary.wgsl", [sq, dst], grid(out.size), params=[out.size, 0.0, 0.0, 0],
                 template={"T_IN": "f32", "T_OUT": "f32", "EXPR": "sqrt(x)"})


def _euclid_ref(attrs, x, axis):
    from .reduce import reduction_axes

    axes = reduction_axes(axis, x.ndim)
    return np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=axes, keepdims=bool(attrs.get("keep_dims")))).astype(x.dtype)


register("EuclideanNorm", reference=_euclid_ref, shape=REGISTRY["Sum"].shape,
         lower=_euclid_lower, host_inputs=(1,),
         cases=[Case([_q((4, 6), 3), np.array(1, np.int32)]),
                Case([_q((2, 3, 4), 4), np.array([0, 2], np.int32)], attrs={"keep_dims": True}, note="keep dims")])


def _lrn_attrs(attrs):
    return (int(attrs.get("depth_radius") if attrs.get("depth_radius") is not None else 5),
            float(attrs.get("bias") if attrs.get("bias") is not None else 1.0),
            float(attrs.get("alpha") if attrs.get("alpha") is not None else 1.0),
            float(attrs.get("beta") if attrs.get("beta") is not None else 0.5))


def _lrn_ref(attrs, x):
    r, bias, alpha, beta = _lrn_attrs(attrs)
    sq = np.square(x.astype(np.float64))
    c = x.shape[-1]
    s = np.stack([sq[..., max(0, k - r): k + r + 1].sum(-1) for k in range(c)], axis=-1)
    return (x / np.power(bias + alpha * s, beta)).astype(np.float32)


def _lrn_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    dst = ctx.device_output()
    if out.size == 0:
        return
    r, bias, alpha, beta = _lrn_attrs(ctx.attrs)
    ctx.dispatch("dyn_lrn.wgsl", [x, dst], grid(out.size),
                 params=[out.size, x.shape[-1], r, 0, bias, alpha, beta, 0])


register("LRN", reference=_lrn_ref, shape=lambda attrs, ins: [(ins[0].shape, F)],
         lower=_lrn_lower, tol=(4e-6, "pow() and a short sum in float32"),
         cases=[Case([((2, 3, 3, 8), F)], attrs={"depth_radius": 2, "bias": 1.0, "alpha": 0.5, "beta": 0.75}),
                Case([((1, 2, 2, 12), F)], note="TF defaults (radius 5)")])


# ------------------------------------------------------------------------------- scatters
def _scatter_rows(ctx, indices, updates, dst, out_shape, scalar=False):
    depth = indices.shape[-1] if indices.rank else 1
    rows = indices.size // max(depth, 1) if indices.rank else 1
    inner = _prod(out_shape[depth:])
    n = rows * inner
    if n == 0:
        return
    if depth > 8:
        raise ValueError("scatter indices deeper than 8 are not supported")
    ctx.dispatch("dyn_scatter.wgsl", [indices, updates, dst], grid(n),
                 params=[n, depth, inner, 0, *vec8(out_shape[:depth]), *vec8(strides(out_shape[:depth]))],
                 constants={"SCALAR": scalar})


def _sparse_to_dense_ref(attrs, idx, shape, values, default):
    shape = [int(d) for d in np.reshape(shape, -1)]
    out = np.full(shape, default, dtype=np.asarray(values).dtype)
    idx = np.asarray(idx).reshape(-1, len(shape)) if len(shape) else np.zeros((np.size(values), 0), int)
    vals = np.broadcast_to(values, (idx.shape[0],))
    for row, v in zip(idx, vals):
        out[tuple(row)] = v
    return out


def _sparse_to_dense_lower(ctx):
    idx, _, values, default = ctx.inputs
    out = ctx.outputs[0]
    dst = ctx.device_output()
    if out.size == 0:
        return
    copy(ctx, default, dst, (out.size,), (0,))                # every element: the default value
    idx_t = idx if idx.rank == 2 else Tensor(tuple(idx.shape) + (1,), idx.dtype, idx.value, idx.buf, idx.weight_key)
    _scatter_rows(ctx, idx_t, values, dst, out.shape, scalar=values.rank == 0)


register("SparseToDense", reference=_sparse_to_dense_ref,
         shape=lambda attrs, ins: [(tuple(int(d) for d in np.reshape(_host(ins[1], "output_shape"), -1)), ins[2].dtype)],
         lower=_sparse_to_dense_lower, host_inputs=(1,), dtypes=(F, I, B),
         cases=[Case([np.array([[0, 1], [1, 0], [2, 3]], np.int32), np.array([3, 4], np.int32),
                      np.array([1.5, -2, 7], np.float32), np.array(0.25, np.float32)]),
                Case([np.array([0, 2, 4], np.int32), np.array([6], np.int32), np.array(9, np.int32),
                      np.array(-1, np.int32)], note="1-D indices, scalar value"),
                Case([np.array([[0, 1], [2, 0]], np.int32), np.array([3, 2], np.int32),
                      np.array([True, True]), np.array(False)], note="bool")])


def _tensor_scatter_ref(attrs, tensor, idx, updates):
    out = np.array(tensor, copy=True)
    depth = idx.shape[-1]
    for row, u in zip(idx.reshape(-1, depth), updates.reshape((-1,) + tensor.shape[depth:])):
        out[tuple(row)] = u
    return out


def _tensor_scatter_lower(ctx):
    tensor, idx, updates = ctx.inputs
    out = ctx.outputs[0]
    dst = ctx.device_output()
    if out.size == 0:
        return
    copy(ctx, tensor, dst, (out.size,), (1,))
    _scatter_rows(ctx, idx, updates, dst, out.shape)


register("TensorScatterUpdate", reference=_tensor_scatter_ref,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_tensor_scatter_lower, dtypes=(F, I, B),
         cases=[Case([((5, 3), F), np.array([[4], [0]], np.int32), ((2, 3), F)], note="rows"),
                Case([((3, 4), I), np.array([[0, 1], [2, 3], [1, 1]], np.int32), ((3,), I)], note="elements")])


def _scatter_nd_ref(attrs, idx, updates, shape):
    shape = [int(d) for d in np.reshape(shape, -1)]
    wide = np.float64 if updates.dtype.kind == "f" else np.int64
    out = np.zeros(shape, wide)
    depth = idx.shape[-1]
    np.add.at(out, tuple(np.moveaxis(idx.reshape(-1, depth), -1, 0)),
              updates.reshape((-1,) + tuple(shape[depth:])).astype(wide))
    return out.astype(updates.dtype)


# host: duplicate indices add up, which a GPU does only with float atomics (not in WebGPU)
register("ScatterNd", reference=_scatter_nd_ref,
         shape=lambda attrs, ins: [(tuple(int(d) for d in np.reshape(_host(ins[2], "shape"), -1)), ins[1].dtype)],
         dtypes=(F, I),
         cases=[Case([np.array([[1], [3], [1]], np.int32), _q((3, 2), 5), np.array([5, 2], np.int32)],
                     note="duplicate indices add")])


# ------------------------------------------------------------ convolutions and pools (host)
import itertools  # noqa: E402

from .runtime import runtime_op  # noqa: E402


def _window_geometry(in_size, k, s, d, padding):
    eff = (k - 1) * d + 1
    if padding == "VALID":
        return max(0, -(-(in_size - eff + 1) // s)), 0, 0
    out = -(-in_size // s)
    total = max((out - 1) * s + eff - in_size, 0)
    return out, total // 2, total - total // 2


def _windows(x, ks, st, dl, padding, fill):
    """For [N, *spatial, C] input: the output spatial shape and, per kernel offset, the strided
    view of the padded input it reads ([N, *out, C]) plus a mask of real (not padded) elements."""
    geo = [_window_geometry(n, k, s, d, padding) for n, k, s, d in zip(x.shape[1:-1], ks, st, dl)]
    pads = [(0, 0)] + [(lo, hi) for _, lo, hi in geo] + [(0, 0)]
    xp = np.pad(x, pads, constant_values=fill)
    real = np.pad(np.ones(x.shape[1:-1], bool), pads[1:-1])
    outs = [o for o, _, _ in geo]
    views = []
    for off in itertools.product(*(range(k) for k in ks)):
        sl = tuple(slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, n, s in zip(off, dl, outs, st))
        views.append((off, xp[(slice(None), *sl)], real[sl]))
    return outs, views


def _spatial_attr(attrs, key, rank, default=1):
    v = attrs.get(key)
    if v is None:
        return [default] * rank
    v = list(v)
    return v[1:-1] if len(v) == rank + 2 else v


def _conv_nd(x, w, st, dl, padding):
    x64 = x.astype(np.float64)
    outs, views = _windows(x64, w.shape[:-2], st, dl, padding, 0.0)
    out = np.zeros((x.shape[0], *outs, w.shape[-1]))
    for off, v, _ in views:
        out += np.tensordot(v, w[off].astype(np.float64), axes=([-1], [0]))
    return out.astype(np.float32)


def _conv3d_ref(attrs, x, w):
    if (attrs.get("data_format") or "NDHWC") != "NDHWC":
        raise ValueError("Conv3D supports NDHWC only")
    return _conv_nd(x, w, _spatial_attr(attrs, "strides", 3), _spatial_attr(attrs, "dilations", 3),
                    str(attrs.get("padding") or "VALID"))


def _conv1d_ref(attrs, x, w):
    """TF.js's Conv1D (NWC): the converter never writes it (TF lowers conv1d to Conv2D)."""
    st = attrs.get("stride") or attrs.get("strides") or 1
    dl = attrs.get("dilation") or attrs.get("dilations") or 1
    st = st[1] if isinstance(st, (list, tuple)) and len(st) == 3 else st
    dl = dl[1] if isinstance(dl, (list, tuple)) and len(dl) == 3 else dl
    return _conv_nd(x, w, [int(np.reshape(st, -1)[0])], [int(np.reshape(dl, -1)[0])], str(attrs.get("padding") or "VALID"))


def _pool_nd(kind):
    def ref(attrs, x):
        rank = x.ndim - 2
        ks, st = _spatial_attr(attrs, "ksize", rank), _spatial_attr(attrs, "strides", rank)
        padding = str(attrs.get("padding") or "VALID")
        fill = -np.inf if kind == "max" else 0.0
        outs, views = _windows(x.astype(np.float64), ks, st, [1] * rank, padding, fill)
        if kind == "max":
            return np.max([v for _, v, _ in views], axis=0).astype(x.dtype)
        total = np.sum([v for _, v, _ in views], axis=0)
        count = np.sum([m for _, _, m in views], axis=0)[None, ..., None]
        return (total / count).astype(x.dtype)
    return ref


def _conv_shape(ref):
    def shape(attrs, ins):
        out = ref(attrs, *[np.zeros(t.shape, np.float32) for t in ins])
        return [(out.shape, F)]
    return shape


def _rand(shape, seed):
    return np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)


register("Conv3D", reference=_conv3d_ref, shape=_conv_shape(_conv3d_ref),
         tol=(2e-6, "float64 reference vs TF's float32 sums of a few dozen terms"),
         cases=[Case([_rand((1, 4, 5, 5, 2), 1), _rand((2, 3, 3, 2, 3), 2)], attrs={"strides": [1, 1, 2, 1, 1],
                                                                                  "padding": "SAME"}),
                Case([_rand((2, 3, 4, 4, 1), 3), _rand((2, 2, 2, 1, 2), 4)],
                     attrs={"strides": [1, 2, 1, 2, 1], "padding": "VALID"})])   # TF's CPU Conv3D: no dilation
for _name, _kind in (("MaxPool3D", "max"), ("AvgPool3D", "avg")):
    register(_name, reference=_pool_nd(_kind), shape=_conv_shape(_pool_nd(_kind)),
             cases=[Case([_rand((1, 4, 5, 6, 2), 5)], attrs={"ksize": [1, 2, 2, 3, 1], "strides": [1, 2, 2, 2, 1],
                                                             "padding": "SAME"}),
                    Case([_rand((2, 3, 3, 4, 1), 6)], attrs={"ksize": [1, 2, 2, 2, 1], "strides": [1, 1, 1, 1, 1],
                                                             "padding": "VALID"})])
register("Conv1D", reference=_conv1d_ref, shape=_conv_shape(_conv1d_ref),
         cases=[Case([_rand((2, 9, 3), 7), _rand((3, 3, 4), 8)], attrs={"stride": 2, "padding": "SAME"})])
_dw = REGISTRY["DepthwiseConv2dNative"]
register("DepthwiseConv2d", reference=_dw.reference, shape=_dw.shape, lower=_dw.lower,
         dtypes=_dw.dtypes, cases=[])     # TF.js's name for it; DepthwiseConv2dNative's cases cover both


def _dilation2d_ref(attrs, x, w):
    st, rt = _spatial_attr(attrs, "strides", 2), _spatial_attr(attrs, "rates", 2)
    outs, views = _windows(x.astype(np.float64), w.shape[:2], st, rt, str(attrs.get("padding") or "VALID"), -np.inf)
    return np.max([v + w[off].astype(np.float64) for off, v, _ in views], axis=0).astype(np.float32)


register("Dilation2D", reference=_dilation2d_ref, shape=_conv_shape(_dilation2d_ref),
         cases=[Case([_rand((1, 6, 7, 2), 9), _rand((2, 3, 2), 10)],
                     attrs={"strides": [1, 1, 2, 1], "rates": [1, 2, 1, 1], "padding": "SAME"}),
                Case([_rand((2, 5, 5, 1), 11), _rand((3, 3, 1), 12)],
                     attrs={"strides": [1, 1, 1, 1], "rates": [1, 1, 1, 1], "padding": "VALID"})])


def _argmax_pool_ref(attrs, x):
    ks, st = _spatial_attr(attrs, "ksize", 2), _spatial_attr(attrs, "strides", 2)
    n, H, W, C = x.shape
    outs, views = _windows(x.astype(np.float64), ks, st, [1, 1], str(attrs.get("padding") or "VALID"), -np.inf)
    _, lo_h, _ = _window_geometry(H, ks[0], st[0], 1, str(attrs.get("padding") or "VALID"))
    _, lo_w, _ = _window_geometry(W, ks[1], st[1], 1, str(attrs.get("padding") or "VALID"))
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


register("MaxPoolWithArgmax", reference=_argmax_pool_ref,
         shape=lambda attrs, ins: [(s, d) for s, d in zip(
             [_argmax_pool_ref(attrs, np.zeros(ins[0].shape, np.float32))[0].shape] * 2, (F, I))],
         cases=[Case([_rand((2, 5, 6, 3), 13)], attrs={"ksize": [1, 2, 2, 1], "strides": [1, 2, 2, 1],
                                                        "padding": "SAME", "Targmax": "int64"}),
                Case([_rand((1, 4, 4, 2), 14)], attrs={"ksize": [1, 3, 3, 1], "strides": [1, 1, 1, 1], "padding": "VALID",
                                                        "include_batch_in_index": True, "Targmax": "int64"})])


# ------------------------------------------------------------------------- creation (host)
def _linspace_ref(attrs, start, stop, num):
    start, stop, n = f32(np.reshape(start, -1)[0]), f32(np.reshape(stop, -1)[0]), int(np.reshape(num, -1)[0])
    if n <= 0:
        raise ValueError(f"LinSpace needs num > 0, got {n}")
    if n == 1:
        return np.array([start], np.float32)
    step = f32((stop - start) / f32(n - 1))
    out = (start + np.arange(n, dtype=np.float32) * step).astype(np.float32)
    out[-1] = stop
    return out


register("LinSpace", reference=_linspace_ref,
         shape=lambda attrs, ins: [(_linspace_ref(attrs, *(_host(t, "LinSpace's arguments") for t in ins)).shape, F)],
         host_inputs=(0, 1, 2),
         cases=[Case([np.array(-1.5, np.float32), np.array(2.0, np.float32), np.array(8, np.int32)]),
                Case([np.array(3.0, np.float32), np.array(3.0, np.float32), np.array(1, np.int32)], note="one")])


def _fill_op(value):
    def ref(attrs, shape):
        dtype = attrs.get("dtype") or attrs.get("T") or F
        return np.full([int(d) for d in np.reshape(shape, -1)], value, np.dtype(dtype if dtype != "bool" else bool))
    return ref


for _name, _v in (("Ones", 1), ("Zeros", 0)):      # TF.js's names (tf.ones/zeros); not TF ops
    register(_name, reference=_fill_op(_v),
             shape=lambda attrs, ins, f=_fill_op(_v): [(f(attrs, _host(ins[0], "the shape")).shape,
                                                        attrs.get("dtype") or attrs.get("T") or F)],
             host_inputs=(0,), cases=[Case([np.array([2, 3], np.int32)], attrs={"dtype": "float32"})])


def _rng(attrs):
    seed, seed2 = int(attrs.get("seed") or 0), int(attrs.get("seed2") or 0)
    return np.random.default_rng([seed, seed2] if seed or seed2 else None)


def _shape_of(rt, t):
    return [int(d) for d in np.reshape(rt.host(t), -1)]


def _random(sample, default=F):
    def impl(rt, attrs, ins):
        dtype = attrs.get("dtype") or attrs.get("Tout") or default
        return [rt.value(sample(_rng(attrs), _shape_of(rt, ins[0]), attrs, rt, ins).astype(dtype))]
    return impl


def _truncated(g, shape, attrs, rt, ins):
    out = g.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = g.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out


def _uniform_int(g, shape, attrs, rt, ins):
    lo, hi = int(np.reshape(rt.host(ins[1]), -1)[0]), int(np.reshape(rt.host(ins[2]), -1)[0])
    if hi <= lo:
        raise ValueError(f"RandomUniformInt needs minval < maxval, got {lo}, {hi}")
    return g.integers(lo, hi, size=shape)


def _multinomial(rt, attrs, ins):
    logits = rt.host(ins[0]).astype(np.float64)
    n = int(np.reshape(rt.host(ins[1]), -1)[0])
    g = _rng(attrs)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    out = np.stack([g.choice(p.shape[-1], size=n, p=row) for row in p]) if n else np.zeros((p.shape[0], 0), int)
    return [rt.value(out.astype(np.int32))]


# Random ops run when executed (never folded), on the host with numpy's generator: values are
# not TensorFlow's (its Philox streams); seeds make runs repeatable. No cases (nothing to match):
# tests/test_dynamic_models.py checks shapes, ranges and moments.
_RANDOM_SHAPE = lambda attrs, ins: [(tuple(_shape_of_t(ins[0])), attrs.get("dtype") or F)]  # noqa: E731


def _shape_of_t(t):
    return [int(d) for d in np.reshape(_host(t, "the shape"), -1)]


runtime_op("RandomUniform", impl=_random(lambda g, s, a, rt, i: g.random(s)), shape=_RANDOM_SHAPE)
runtime_op("RandomStandardNormal", impl=_random(lambda g, s, a, rt, i: g.standard_normal(s)),
           shape=_RANDOM_SHAPE)
runtime_op("TruncatedNormal", impl=_random(_truncated), shape=_RANDOM_SHAPE)
runtime_op("RandomUniformInt", impl=_random(_uniform_int, I),
           shape=lambda attrs, ins: [(tuple(_shape_of_t(ins[0])), ins[1].dtype)])
runtime_op("Multinomial", impl=_multinomial,
           shape=lambda attrs, ins: [((ins[0].shape[0], int(np.reshape(_host(ins[1], "num_samples"), -1)[0])), I)])


# ---------------------------------------------------------------------------- bincounts (host)
def _bincount_ref(attrs, arr, size, weights):
    size = int(np.reshape(size, -1)[0])
    arr = np.asarray(arr).reshape(-1)
    w = np.asarray(weights).reshape(-1)
    keep = (arr >= 0) & (arr < size)
    if w.size:
        return np.bincount(arr[keep], weights=w[keep].astype(np.float64), minlength=size)[:size].astype(w.dtype)
    return np.bincount(arr[keep], minlength=size)[:size].astype(np.int32)


def _dense_bincount_ref(attrs, x, size, weights):
    x = np.asarray(x)
    size = int(np.reshape(size, -1)[0])
    rows = x.reshape(-1, x.shape[-1]) if x.ndim == 2 else x.reshape(1, -1)
    w = np.asarray(weights)
    wr = w.reshape(rows.shape) if w.size else None
    dtype = w.dtype if w.size else x.dtype
    out = np.zeros((rows.shape[0], size), np.float64)
    for r in range(rows.shape[0]):
        for k, v in enumerate(rows[r]):
            if 0 <= v < size:
                out[r, v] = 1 if attrs.get("binary_output") else out[r, v] + (wr[r, k] if wr is not None else 1)
    return out.reshape(size if x.ndim == 1 else (rows.shape[0], size)).astype(dtype)


register("Bincount", reference=_bincount_ref,
         shape=lambda attrs, ins: [((int(np.reshape(_host(ins[1], "size"), -1)[0]),), ins[2].dtype if ins[2].size else I)],
         host_inputs=(1,), dtypes=(F, I),
         cases=[Case([((20,), I, 0, 6), np.array(5, np.int32), np.zeros(0, np.float32)],
                     note="counts; values >= size dropped"),
                Case([((12,), I, 0, 4), np.array(4, np.int32), _q((12,), 3)], note="weights")])
register("DenseBincount", reference=_dense_bincount_ref,
         shape=lambda attrs, ins: [((*ins[0].shape[:-1], int(np.reshape(_host(ins[1], "size"), -1)[0])),
                                    ins[2].dtype if ins[2].size else ins[0].dtype)],
         host_inputs=(1,), dtypes=(F, I),
         cases=[Case([((3, 8), I, 0, 5), np.array(6, np.int32), np.zeros(0, np.int32)]),
                Case([((10,), I, 0, 4), np.array(4, np.int32), np.zeros(0, np.int32)], attrs={"binary_output": True})])


# ----------------------------------------------------------- complex numbers and FFTs (host)
# complex64 lives on the host only; no kernel takes it. Ops producing complex values have no
# registry cases (the shared comparison is for real dtypes): tests/test_dynamic_models.py checks
# them against TensorFlow.
C64 = "complex64"
register("Complex", reference=lambda attrs, re, im: (re + 1j * im).astype(np.complex64),
         shape=lambda attrs, ins: [(broadcast(ins[0].shape, ins[1].shape), C64)], dtypes=(F,))
register("ComplexAbs", reference=lambda attrs, z: np.abs(z).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape, F)], host_inputs=(0,), dtypes=(C64,),
         cases=[Case([(np.arange(6).reshape(2, 3) - 2.5 + 1j * np.arange(6).reshape(2, 3) / 3).astype(np.complex64)])])
register("Real", reference=lambda attrs, z: np.real(z).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape, F)], host_inputs=(0,), dtypes=(C64,),
         cases=[Case([np.array([1 - 2j, 3.5 + 0j, -1j], np.complex64)])])
register("Imag", reference=lambda attrs, z: np.imag(z).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape, F)], host_inputs=(0,), dtypes=(C64,),
         cases=[Case([np.array([1 - 2j, 3.5 + 0j, -1j], np.complex64)])])


def _fft_len(t):
    return int(np.reshape(t, -1)[0])


register("FFT", reference=lambda attrs, z: np.fft.fft(z).astype(np.complex64),
         shape=lambda attrs, ins: [(ins[0].shape, C64)], host_inputs=(0,), dtypes=(C64,))
register("IFFT", reference=lambda attrs, z: np.fft.ifft(z).astype(np.complex64),
         shape=lambda attrs, ins: [(ins[0].shape, C64)], host_inputs=(0,), dtypes=(C64,))
register("RFFT", reference=lambda attrs, x, n: np.fft.rfft(x.astype(np.float64), _fft_len(n)).astype(np.complex64),
         shape=lambda attrs, ins: [(ins[0].shape[:-1] + (_fft_len(_host(ins[1], "fft_length")) // 2 + 1,), C64)],
         host_inputs=(1,), dtypes=(F,))
register("IRFFT", reference=lambda attrs, z, n: np.fft.irfft(z, _fft_len(n)).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape[:-1] + (_fft_len(_host(ins[1], "fft_length")),), F)],
         host_inputs=(0, 1), dtypes=(C64,),
         tol=(1e-6, "an FFT in float64 (numpy) vs float32 (TF): sums of n terms"),
         cases=[Case([np.fft.rfft(_rand((2, 8), 15)).astype(np.complex64), np.array([8], np.int32)])])


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
    return Case([_rand((1, 5, 6, 2), 16), t, np.array([6, 7], np.int32), np.array(-1.0, np.float32)],
                attrs={"fill_mode": mode, "interpolation": interp, "dtype": "float32"}, note=note)


register("ImageProjectiveTransformV3", reference=_projective_ref,
         shape=lambda attrs, ins: [((ins[0].shape[0], *(int(v) for v in np.reshape(_host(ins[2], "output_shape"), -1)),
                                     ins[0].shape[3]), ins[0].dtype)],
         host_inputs=(2,), tol=(2e-6, "bilinear weights of a projected coordinate in float32"),
         cases=[_projective_case("CONSTANT", "NEAREST", "constant fill, nearest"),
                _projective_case("CONSTANT", "BILINEAR", "constant fill, bilinear"),
                _projective_case("REFLECT", "BILINEAR", "reflect"),
                _projective_case("WRAP", "NEAREST", "wrap"),
                _projective_case("NEAREST", "BILINEAR", "nearest fill")])
