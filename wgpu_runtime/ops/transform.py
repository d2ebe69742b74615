"""Data-moving ops: views, copies, slices, padding, concatenation, gathers, scatters, and shape ops.

Views (Identity, Reshape, Squeeze, ExpandDims...) alias their input's buffer: no dispatch. Every
other move is a launch of the copy engine (strided_copy.py: ``copy.wgsl``, a strided copy over
an iteration shape with an optional per-dimension source rule -- pad, tile, mirror) or of
``gather.wgsl``: one per output, two for SpaceToBatchND / BatchToSpaceND over partial blocks.
Gather indices out of range give zeros on the GPU (TF raises on the CPU; a kernel cannot). Shape,
Size and Rank are computed from the input's shape on the host at plan time (``shape_only``), so
shape arithmetic downstream of them folds there too and never reaches the GPU.

Also here: BroadcastTo (one strided copy, stride 0 along broadcast dims; an alias when nothing
grows), ReverseV2 / Reverse (a copy with negative strides), TF.js's Concat and Gather (ConcatV2's
and GatherV2's lowerings), SparseToDense and TensorScatterUpdate (a copy, then
``kernels/scatter.wgsl`` writes the rows), ScatterNd on the host.
"""
from __future__ import annotations

import numpy as np

from .common import ALL, B, F, I, alias_all, host_value, prod, quarters, same_shape
from .launch import grid_1d
from .registry import REGISTRY, Case, Tensor, register
from .rows import BROADCASTS, axis, dev, first, rank, row_wise, same_rank
from .shapes import broadcast, broadcast_strides, normalize_axis, strides, vec8
from .strided_copy import AFFINE, PAD, REFLECT, SYMMETRIC, TILE, bits, copy, run_length, view


# ----------------------------------------------------------------------------------- helpers
def _ints(t, what: str) -> list[int]:
    return [int(v) for v in np.asarray(host_value(t, what)).reshape(-1)]


def _cases(shapes_dtypes, **kw):
    return [Case([(s, d)], **kw) for s, d in shapes_dtypes]


def _along(axis_of, ranks_agree=False):
    """Row-wise rule of an op joining or splitting tensors along the axis ``axis_of(attrs, ins,
    outs)``: not when that axis is the batch (nor, with ``ranks_agree``, when its device inputs'
    ranks differ from the output's)."""
    def rule(name, attrs, ins, outs):
        if ranks_agree and not same_rank(ins, outs):
            return "mixes tensors of other ranks"
        return "works along the batch" if axis_of(attrs, ins, outs) == 0 else None
    return rule


# ------------------------------------------------------------------------- gradient rules
# grad(attrs, inputs, outputs, dys) -> one gradient per input (see wgpu_runtime/autograd);
# shapes, axes, paddings and indices get None.
def _float(x) -> bool:
    return x.dtype.kind == "f"


def _reshaped_grad(attrs, ins, outs, dys):        # Reshape, Squeeze, ExpandDims, Identity
    x = ins[0]
    return [dys[0].reshape(x.shape) if _float(x) else None] + [None] * (len(ins) - 1)


def moved_grad(op: str, pos: int = 0):
    """Gradient of an op whose every output element is one element of input ``pos`` or a fill
    value (slices, pads, tiles, gathers): the op's own reference, run on element numbers 1..n
    (0 stays the fill), says where each output element came from; gradients are summed back."""
    def grad(attrs, ins, outs, dys):
        x = ins[pos]
        if not _float(x):
            return [None] * len(ins)
        args = list(ins)
        args[pos] = np.arange(1, x.size + 1, dtype=np.int64).reshape(x.shape)
        if op == "PadV2":
            args[2] = np.zeros((), np.int64)
        src = np.asarray(REGISTRY[op].reference(attrs, *args)).ravel()
        dx = np.bincount(src, weights=dys[0].ravel().astype(np.float64), minlength=x.size + 1)[1:]
        out = [None] * len(ins)
        out[pos] = dx.reshape(x.shape).astype(x.dtype)
        return out
    return grad


def _transpose_grad(attrs, ins, outs, dys):
    x, perm = ins
    return [np.transpose(dys[0], np.argsort([int(p) for p in perm])) if _float(x) else None, None]


def _zeros_for(dys, outs):
    return [np.zeros_like(o) if d is None else d for d, o in zip(dys, outs)]


def _concat_grad(attrs, ins, outs, dys):
    vals = ins[:-1]
    axis = int(np.reshape(ins[-1], -1)[0]) % vals[0].ndim
    pieces = np.split(dys[0], np.cumsum([v.shape[axis] for v in vals])[:-1], axis=axis)
    return [p if _float(v) else None for p, v in zip(pieces, vals)] + [None]


def _pack_grad(attrs, ins, outs, dys):
    axis = int(attrs.get("axis") or 0) % outs[0].ndim
    return [np.take(dys[0], i, axis=axis) if _float(x) else None for i, x in enumerate(ins)]


def _unpack_grad(attrs, ins, outs, dys):
    x = ins[0]
    return [np.stack(_zeros_for(dys, outs), axis=int(attrs.get("axis") or 0)) if _float(x) else None]


def _split_grad(attrs, ins, outs, dys):        # Split (axis, value)
    x, axis = ins[1], int(np.reshape(ins[0], -1)[0])
    return [None, np.concatenate(_zeros_for(dys, outs), axis=axis) if _float(x) else None]


def _splitv_grad(attrs, ins, outs, dys):       # SplitV (value, size_splits, axis)
    x, axis = ins[0], int(np.reshape(ins[2], -1)[0])
    return [np.concatenate(_zeros_for(dys, outs), axis=axis) if _float(x) else None, None, None]


# ------------------------------------------------------------------------------------ views
_VIEW_CASES = _cases([((3, 5), F), ((2, 1, 7), I), ((), F), ((4,), B)])
for _name in ("Identity", "Snapshot", "StopGradient"):
    register(_name, reference=lambda attrs, x: x, shape=same_shape, lower=alias_all,
             dtypes=ALL, cases=_VIEW_CASES, rows=row_wise,
             grad=(lambda attrs, ins, outs, dys: [None]) if _name == "StopGradient" else _reshaped_grad)

# NoOp has no outputs (it only orders control edges); tests/test_ops_transform.py plans one.
register("NoOp", reference=lambda attrs: (), shape=lambda attrs, ins: [], dtypes=())


def _reshape_dims(ins) -> tuple[int, ...]:
    x, shape = ins[0], _ints(ins[1], "Reshape's shape")
    if sum(d == -1 for d in shape) > 1 or any(d < -1 for d in shape):
        raise ValueError(f"Reshape's shape {shape} may hold one -1 and no other negative size")
    if -1 in shape:
        known = prod([d for d in shape if d != -1])
        if known == 0 or x.size % known:
            raise ValueError(f"cannot reshape {x.shape} to {shape}")
        shape = [x.size // known if d == -1 else d for d in shape]
    if prod(shape) != x.size:
        raise ValueError(f"cannot reshape {x.shape} ({x.size} elements) to {tuple(shape)}")
    return tuple(shape)


register("Reshape", reference=lambda attrs, x, s: np.reshape(x, [int(d) for d in s]),
         shape=lambda attrs, ins: [(_reshape_dims(ins), ins[0].dtype)], lower=alias_all, host_inputs=(1,),
         dtypes=ALL, grad=_reshaped_grad, rows=row_wise,
         cases=[Case([((2, 3, 4), F), np.array([4, -1], np.int32)], note="-1"),
                Case([((6,), I), np.array([1, 2, 3], np.int32)]),
                Case([((1,), B), np.array([], np.int32)], note="to a scalar"),
                Case([((0, 3), F), np.array([-1, 3], np.int32)], note="empty")])


def _squeeze_axes(attrs, shape) -> list[int]:
    axes = attrs.get("squeeze_dims") or attrs.get("axis") or []
    if not axes:
        return [i for i, d in enumerate(shape) if d == 1]
    axes = sorted({normalize_axis(int(a), len(shape)) for a in axes})
    for a in axes:
        if shape[a] != 1:
            raise ValueError(f"cannot squeeze dim {a} of shape {shape}: its size is not 1")
    return axes


def _squeeze_shape(attrs, ins):
    axes = _squeeze_axes(attrs, ins[0].shape)
    return [(tuple(d for i, d in enumerate(ins[0].shape) if i not in axes), ins[0].dtype)]


# TF's attr is squeeze_dims; tf.raw_ops spells it axis (the cases use that so TF checks them).
register("Squeeze", reference=lambda attrs, x: np.squeeze(x, axis=tuple(attrs.get("squeeze_dims") or attrs.get("axis") or [])
                                                    or None),
         shape=_squeeze_shape, lower=alias_all, dtypes=ALL, grad=_reshaped_grad, rows=row_wise,
         cases=[Case([((1, 3, 1, 5), F)], note="all size-1 dims"),
                Case([((1, 3, 1, 5), I)], attrs={"axis": [-2]}),
                Case([((1, 1), B)], attrs={"axis": [0, 1]})])


def _expand_shape(attrs, ins):
    shape = ins[0].shape
    (axis,) = _ints(ins[1], "ExpandDims' axis")
    if not -len(shape) - 1 <= axis <= len(shape):
        raise ValueError(f"axis {axis} out of range for rank {len(shape)}")
    axis %= len(shape) + 1
    return [(shape[:axis] + (1,) + shape[axis:], ins[0].dtype)]


register("ExpandDims", reference=lambda attrs, x, a: np.expand_dims(x, int(np.reshape(a, -1)[0])),
         shape=_expand_shape, lower=alias_all, host_inputs=(1,), dtypes=ALL, grad=_reshaped_grad,
         rows=row_wise,
         cases=[Case([((3, 5), F), np.array(0, np.int32)]),
                Case([((3, 5), I), np.array([-1], np.int32)], note="last"),
                Case([((), B), np.array(0, np.int32)], note="scalar")])


# ----------------------------------------------------------------------- shape-derived values
register("Shape", reference=lambda attrs, x: np.array(np.shape(x), dtype=attrs.get("out_type") or "int32"),
         shape=lambda attrs, ins: [((ins[0].rank,), "int32")], shape_only=True, dtypes=ALL,
         cases=[Case([((2, 3, 5), F)]), Case([((), I)], note="scalar"),
                Case([((4, 0), B)], attrs={"out_type": "int64"}, note="empty, int64")])
register("Size", reference=lambda attrs, x: np.array(np.size(x), dtype=attrs.get("out_type") or "int32"),
         shape=lambda attrs, ins: [((), "int32")], shape_only=True, dtypes=ALL,
         cases=[Case([((2, 3, 5), F)]), Case([((), I)], note="scalar"),
                Case([((4, 0), B)], attrs={"out_type": "int64"}, note="empty, int64")])
register("Rank", reference=lambda attrs, x: np.array(np.ndim(x), np.int32),
         shape=lambda attrs, ins: [((), "int32")], shape_only=True, dtypes=ALL,
         cases=[Case([((2, 3, 5), F)]), Case([((), I)], note="scalar"), Case([((4, 0), B)], note="empty")])


def _fill_shape(attrs, ins):
    dims = _ints(ins[0], "Fill's dims")
    if ins[1].rank != 0:
        raise ValueError(f"Fill's value must be a scalar, got shape {ins[1].shape}")
    return [(tuple(dims), ins[1].dtype)]


def _fill_lower(ctx):
    out = ctx.outputs[0]
    view(ctx, out.shape, [0] * out.rank, inp=1)      # every element reads the scalar


register("Fill", reference=lambda attrs, dims, v: np.full([int(d) for d in dims], v, v.dtype),
         shape=_fill_shape, lower=_fill_lower, host_inputs=(0,), dtypes=ALL,
         cases=[Case([np.array([3, 5], np.int32), ((), F)]),
                Case([np.array([7], np.int32), ((), I)]),
                Case([np.array([2, 1, 3], np.int32), ((), B)]),
                Case([np.array([], np.int32), ((), F)], note="scalar")])


def _range_ref(attrs, start, limit, delta):
    start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
    dtype = np.result_type(start, limit, delta)
    if delta == 0 or (limit - start) * delta < 0:
        raise ValueError(f"Range({start}, {limit}, {delta}) never reaches its limit (TF raises too)")
    if dtype.kind == "i":
        n = -(-(int(limit) - int(start)) // int(delta))
    else:
        n = int(np.ceil(np.abs((limit - start) / delta)))
    return (start + np.arange(n, dtype=dtype) * delta).astype(dtype)    # TF: start + i * delta in T


register("Range", reference=_range_ref,
         shape=lambda attrs, ins: [(_range_ref(attrs, *(host_value(t, "Range's bounds") for t in ins)).shape,
                                    ins[0].dtype)],
         host_inputs=(0, 1, 2), dtypes=(F, I),
         cases=[Case([np.array(0, np.int32), np.array(10, np.int32), np.array(3, np.int32)]),
                Case([np.array(5, np.int32), np.array(-4, np.int32), np.array(-2, np.int32)], note="negative"),
                Case([np.array(0.1, np.float32), np.array(2.0, np.float32), np.array(0.3, np.float32)],
                     note="float"),
                Case([np.array(3, np.int32), np.array(3, np.int32), np.array(1, np.int32)], note="empty")])


def _fill_like(value):
    def lower(ctx):
        x = ctx.inputs[0]
        # a PAD copy whose source extent is 0: every element is the fill value
        copy(ctx, x, ctx.device_output(), (x.size,), (0,), mode=PAD, ext=(0,), fill=bits(value, x.dtype))
    return lower


register("ZerosLike", reference=lambda attrs, x: np.zeros_like(x), shape=same_shape,
         lower=_fill_like(0), dtypes=ALL, rows=row_wise, cases=_cases([((3, 5), F), ((7,), I), ((2, 2), B), ((), F)]))
register("OnesLike", reference=lambda attrs, x: np.ones_like(x), shape=same_shape,
         lower=_fill_like(1), dtypes=ALL, rows=row_wise, cases=_cases([((3, 5), F), ((7,), I), ((2, 2), B), ((), F)]))


# ---------------------------------------------------------------------------------- Transpose
def _perm(ins) -> list[int]:
    perm = _ints(ins[1], "Transpose's perm")
    if sorted(perm) != list(range(ins[0].rank)):
        raise ValueError(f"perm {perm} is not a permutation of the {ins[0].rank} dims")
    return perm


def _transpose_lower(ctx):
    x = ctx.inputs[0]
    st = strides(x.shape)
    perm = _perm(ctx.inputs)
    view(ctx, [x.shape[p] for p in perm], [st[p] for p in perm])


register("Transpose", grad=_transpose_grad,
         reference=lambda attrs, x, p: np.transpose(x, [int(v) for v in p]),
         shape=lambda attrs, ins: [(tuple(ins[0].shape[p] for p in _perm(ins)), ins[0].dtype)],
         lower=_transpose_lower, host_inputs=(1,), dtypes=ALL,
         rows=lambda name, attrs, ins, outs: None if int(first(ins[1])) % rank(outs) == 0 else "moves the batch",
         cases=[Case([((2, 3, 5), F), np.array([2, 0, 1], np.int32)]),
                Case([((2, 3, 4, 5), I), np.array([0, 3, 1, 2], np.int32)], note="NHWC->NCHW"),
                Case([((3, 1, 4), B), np.array([1, 0, 2], np.int32)], note="moves a size-1 dim: alias"),
                Case([((4, 5), F), np.array([0, 1], np.int32)], note="identity: alias"),
                Case([((3, 37, 5), F), np.array([0, 2, 1], np.int32)], note="inner dim 37: several runs"),
                Case([((2, 1, 2, 1, 2, 1, 2, 3, 2), F), np.arange(9)[::-1].astype(np.int32)],
                     note="rank 9, size-1 dims dropped")])


# ----------------------------------------------------------------------------------- padding
def _paddings(ins) -> np.ndarray:
    pads = np.asarray(host_value(ins[1], "paddings"), np.int64).reshape(-1, 2)
    if pads.shape[0] != ins[0].rank or (pads < 0).any():
        raise ValueError(f"paddings must be [{ins[0].rank}, 2] non-negative values, got {pads.tolist()}")
    return pads


def _pad_shape(attrs, ins):
    pads = _paddings(ins)
    if len(ins) > 2 and ins[2].rank != 0:
        raise ValueError("constant_values must be a scalar")
    return [(tuple(int(d + a + b) for d, (a, b) in zip(ins[0].shape, pads)), ins[0].dtype)]


def _mirror_mode(attrs) -> int:
    mode = str(attrs.get("mode") or "REFLECT").upper()
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise ValueError(f"MirrorPad mode {mode!r} is not REFLECT or SYMMETRIC")
    return REFLECT if mode == "REFLECT" else SYMMETRIC


def _pad_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    pads = _paddings(ctx.inputs)
    if not pads.any():
        ctx.alias()
        return
    if ctx.node.op == "MirrorPad":
        mode, fill = _mirror_mode(ctx.attrs), 0
        limit = 0 if mode == REFLECT else 1
        if any(a > d - 1 + limit or b > d - 1 + limit for d, (a, b) in zip(x.shape, pads)):
            raise ValueError(f"MirrorPad paddings {pads.tolist()} are too large for shape {x.shape}")
    else:
        mode = PAD
        fill = bits(ctx.value(2), x.dtype) if len(ctx.inputs) > 2 else 0
    copy(ctx, x, ctx.device_output(), out.shape, strides(x.shape), mode=mode, lo=pads[:, 0], ext=x.shape,
         fill=fill)


def _pad_ref(attrs, x, pads, value=0):
    return np.pad(x, np.asarray(pads, np.int64), constant_values=np.asarray(value).astype(x.dtype))


_PADS = np.array([[1, 2], [0, 0], [3, 1]], np.int32)
def _pad_rows(name, attrs, ins, outs):
    return "pads the batch" if np.reshape(ins[1].value, (-1, 2))[0].any() else None


register("Pad", grad=moved_grad("Pad"),
         reference=_pad_ref, shape=_pad_shape, lower=_pad_lower, host_inputs=(1,),
         dtypes=ALL, rows=_pad_rows,
         cases=[Case([((2, 3, 5), F), _PADS]),
                Case([((1, 4, 4, 3), I), np.array([[0, 0], [1, 1], [2, 0], [0, 0]], np.int32)], note="NHWC"),
                Case([((3,), B), np.array([[2, 1]], np.int32)]),
                Case([((2, 3), F), np.zeros((2, 2), np.int32)], note="no padding: alias"),
                Case([((3, 41), F), np.array([[1, 0], [5, 3]], np.int32)], note="inner dim 49: several runs"),
                Case([((0, 2), F), np.array([[1, 1], [0, 1]], np.int32)], note="empty input")])
register("PadV2", grad=moved_grad("PadV2"),
         reference=_pad_ref, shape=_pad_shape, lower=_pad_lower,
         host_inputs=(1, 2), dtypes=ALL, rows=_pad_rows,
         cases=[Case([((2, 3, 5), F), _PADS, np.array(-1.5, np.float32)]),
                Case([((4, 3), I), np.array([[1, 0], [2, 2]], np.int32), np.array(7, np.int32)]),
                Case([((2, 2), B), np.array([[1, 1], [0, 1]], np.int32), np.array(True)])])


def _mirror_ref(attrs, x, pads):
    return np.pad(x, np.asarray(pads, np.int64), mode="reflect" if _mirror_mode(attrs) == REFLECT else "symmetric")


register("MirrorPad", grad=moved_grad("MirrorPad"),
         reference=_mirror_ref, shape=_pad_shape, lower=_pad_lower,
         host_inputs=(1,), dtypes=ALL, rows=_pad_rows,
         cases=[Case([((3, 4, 5), F), np.array([[2, 2], [0, 0], [1, 4]], np.int32)], attrs={"mode": "REFLECT"},
                     note="largest REFLECT paddings"),
                Case([((3, 4, 5), F), np.array([[3, 3], [1, 0], [0, 5]], np.int32)], attrs={"mode": "SYMMETRIC"},
                     note="largest SYMMETRIC paddings"),
                Case([((1, 5, 5, 2), I), np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)],
                     attrs={"mode": "REFLECT"}, note="NHWC"),
                Case([((4, 1), B), np.array([[1, 2], [1, 1]], np.int32)], attrs={"mode": "SYMMETRIC"}),
                Case([((2, 40), F), np.array([[1, 1], [39, 38]], np.int32)], attrs={"mode": "REFLECT"},
                     note="inner dim 117: several runs")])


# ------------------------------------------------------------------------------------- Tile
def _multiples(ins) -> list[int]:
    m = _ints(ins[1], "Tile's multiples")
    if len(m) != ins[0].rank or min(m, default=0) < 0:
        raise ValueError(f"multiples {m} must be {ins[0].rank} non-negative values")
    return m


def _tile_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    if all(m == 1 for m in _multiples(ctx.inputs)):
        ctx.alias()
        return
    copy(ctx, x, ctx.device_output(), out.shape, strides(x.shape), mode=TILE, ext=x.shape)


register("Tile", grad=moved_grad("Tile"),
         reference=lambda attrs, x, m: np.tile(x, [int(v) for v in m]),
         shape=lambda attrs, ins: [(tuple(d * m for d, m in zip(ins[0].shape, _multiples(ins))), ins[0].dtype)],
         lower=_tile_lower, host_inputs=(1,), dtypes=ALL,
         rows=lambda name, attrs, ins, outs: None if int(first(ins[1])) == 1 else "tiles the batch",
         cases=[Case([((2, 3), F), np.array([3, 2], np.int32)]),
                Case([((2, 1, 3), I), np.array([1, 4, 1], np.int32)], note="broadcast a size-1 dim"),
                Case([((3,), B), np.array([5], np.int32)]),
                Case([((2, 3), F), np.array([1, 1], np.int32)], note="alias"),
                Case([((2, 3), F), np.array([0, 2], np.int32)], note="empty"),
                Case([((2, 7), F), np.array([2, 5], np.int32)], note="inner dim 35: several runs")])


# --------------------------------------------------------------------------- space <-> batch
# Converted models express dilated convolutions as SpaceToBatchND -> Conv2D -> BatchToSpaceND.
# Layout [batch, spatial (M dims)..., rest...]; block offsets fold into the batch, outermost.
def _block_args(ins, what: str) -> tuple[list[int], np.ndarray]:
    """block_shape and the [M, 2] paddings (or crops), validated against the input's rank."""
    x = ins[0]
    block = _ints(ins[1], "block_shape")
    amounts = np.asarray(host_value(ins[2], what), np.int64).reshape(-1, 2)
    if min(block, default=1) < 1 or x.rank < 1 + len(block) or amounts.shape[0] != len(block) or (amounts < 0).any():
        raise ValueError(f"block_shape {block} and {what} {amounts.tolist()} must be M values >= 1 and [M, 2] "
                         f"values >= 0 for M <= {x.rank - 1} (input shape {x.shape})")
    return block, amounts


def _space_to_batch_shape(attrs, ins):
    x = ins[0]
    block, pads = _block_args(ins, "paddings")
    m = len(block)
    padded = [int(d + lo + hi) for d, (lo, hi) in zip(x.shape[1:1 + m], pads)]
    if any(p % b for p, b in zip(padded, block)):
        raise ValueError(f"padded spatial shape {padded} is not divisible by block_shape {block}")
    return [((x.shape[0] * prod(block), *(p // b for p, b in zip(padded, block)), *x.shape[1 + m:]), x.dtype)]


def _space_to_batch(ctx, src, shape, block, lo_blocks) -> None:
    """Output [o, n, y, r] (o: the block offset, folded into the batch) = src[n, (y - lo) * block + o, r]
    for ``src`` of ``shape`` whose spatial dims are whole blocks; ``lo_blocks`` leading blocks of zeros."""
    m = len(block)
    st = strides(shape)
    rest = prod(shape[1 + m:])
    ys = ctx.outputs[0].shape[1:1 + m]
    sizes = [*block, shape[0], *ys, rest]
    src_strides = [*st[1:1 + m], st[0], *(b * s for b, s in zip(block, st[1:])), 1]
    ext = [*block, shape[0], *(d // b for d, b in zip(shape[1:], block)), rest]
    copy(ctx, src, ctx.device_output(), sizes, src_strides, mode=PAD if any(lo_blocks) else AFFINE,
         lo=[0] * (m + 1) + list(lo_blocks) + [0], ext=ext)


def _space_to_batch_lower(ctx):
    """One copy when the padding is whole blocks on spatial dims of whole blocks (dilated 3x3 SAME
    convolutions on even sizes: the bounds check then splits per dim); else a pad, then the copy."""
    x = ctx.inputs[0]
    block, pads = _block_args(ctx.inputs, "paddings")
    m = len(block)
    if all(b == 1 for b in block) and not pads.any():
        ctx.alias()
        return
    if all(lo % b == 0 and d % b == 0 for d, b, (lo, _) in zip(x.shape[1:], block, pads)):
        _space_to_batch(ctx, x, x.shape, block, [lo // b for b, (lo, _) in zip(block, pads)])
        return
    padded = (x.shape[0], *(d + lo + hi for d, (lo, hi) in zip(x.shape[1:], pads)), *x.shape[1 + m:])
    tmp = ctx.temp(4 * prod(padded), "padded")
    copy(ctx, x, tmp, padded, strides(x.shape), mode=PAD, lo=[0, *pads[:, 0], *[0] * (x.rank - 1 - m)],
         ext=x.shape)
    _space_to_batch(ctx, tmp, padded, block, [0] * m)


def _space_to_batch_ref(attrs, x, block, pads):
    """TF's definition: pad, split each spatial dim into (dim / block, block), move the block dims
    to the front, fold them into the batch."""
    block = [int(b) for b in np.reshape(block, -1)]
    m = len(block)
    p = np.pad(x, [(0, 0), *np.reshape(pads, (m, 2)).tolist(), *[(0, 0)] * (x.ndim - 1 - m)])
    split = [p.shape[0], *(v for d, b in zip(p.shape[1:], block) for v in (d // b, b)), *p.shape[1 + m:]]
    perm = [*range(2, 2 * m + 1, 2), 0, *range(1, 2 * m, 2), *range(2 * m + 1, len(split))]
    return p.reshape(split).transpose(perm).reshape(p.shape[0] * prod(block), *(
        d // b for d, b in zip(p.shape[1:], block)), *p.shape[1 + m:])


def _block_case(shape, dtype, block, amounts, note):
    return Case([(shape, dtype), np.array(block, np.int32), np.array(amounts, np.int32).reshape(-1, 2)], note=note)


register("SpaceToBatchND", grad=moved_grad("SpaceToBatchND"),
         reference=_space_to_batch_ref, shape=_space_to_batch_shape,
         lower=_space_to_batch_lower, host_inputs=(1, 2), dtypes=(F, I),
         cases=[_block_case((1, 6, 6, 3), F, [2, 2], [[2, 2], [2, 2]], "dilated 3x3 SAME, rate 2: one copy"),
                _block_case((2, 5, 7, 3), F, [2, 3], [[1, 0], [0, 2]], "partial blocks: pad, then copy"),
                _block_case((1, 4, 4, 1), I, [2, 2], [[0, 0], [0, 0]], "no padding"),
                _block_case((2, 7, 4), F, [2], [[2, 1]], "one spatial dim of odd size"),
                _block_case((1, 4, 2, 6, 2), I, [2, 1, 3], [[0, 2], [1, 1], [0, 0]], "three spatial dims"),
                _block_case((2, 4, 6), F, [2, 3], [[0, 0], [3, 0]], "no depth dims"),
                _block_case((1, 3, 3, 37), F, [4, 4], [[4, 1], [0, 5]], "depth 37: several runs"),
                _block_case((2, 3, 2), F, [1], [[1, 2]], "block 1: a pad"),
                _block_case((2, 2, 3), F, [1, 1], [[0, 0], [0, 0]], "block 1, no padding: alias"),
                _block_case((0, 4, 4, 2), F, [2, 2], [[0, 0], [1, 1]], "empty batch"),
                _block_case((2, 3), I, [], [], "no block dims: alias")])


def _batch_to_space_shape(attrs, ins):
    x = ins[0]
    block, crops = _block_args(ins, "crops")
    m = len(block)
    full = [d * b for d, b in zip(x.shape[1:], block)]
    if x.shape[0] % prod(block):
        raise ValueError(f"batch {x.shape[0]} is not divisible by the product of block_shape {block}")
    if any(lo + hi > f for f, (lo, hi) in zip(full, crops)):
        raise ValueError(f"crops {crops.tolist()} exceed the spatial sizes {full}")
    return [((x.shape[0] // prod(block), *(f - lo - hi for f, (lo, hi) in zip(full, crops)), *x.shape[1 + m:]),
             x.dtype)]


def _batch_to_space(ctx, block, first, ys, dst) -> None:
    """``dst`` [n, y, o, r] (spatial coordinate y * block + o) = x[o * n + n', y + first, r]: ``ys``
    output spatial rows of whole blocks from block row ``first`` of the input (x: the op's input)."""
    x = ctx.inputs[0]
    m = len(block)
    st, ost = strides(x.shape), strides(block)
    n = x.shape[0] // prod(block)
    sizes = [n, *(v for y, b in zip(ys, block) for v in (y, b)), prod(x.shape[1 + m:])]
    src_strides = [st[0], *(v for i in range(m) for v in (st[1 + i], ost[i] * n * st[0])), 1]
    copy(ctx, x, dst, sizes, src_strides, src_base=sum(f * s for f, s in zip(first, st[1:])))


def _batch_to_space_lower(ctx):
    """One copy when the crops are whole blocks at the start and the cropped sizes whole blocks;
    else the copy into an uncropped temp, then the crop (a slice)."""
    x, out = ctx.inputs[0], ctx.outputs[0]
    block, crops = _block_args(ctx.inputs, "crops")
    m = len(block)
    if all(b == 1 for b in block) and not crops.any():
        ctx.alias()
        return
    if all(lo % b == 0 and d % b == 0 for d, b, (lo, _) in zip(out.shape[1:], block, crops)):
        _batch_to_space(ctx, block, [lo // b for b, (lo, _) in zip(block, crops)],
                        [d // b for d, b in zip(out.shape[1:], block)], ctx.device_output())
        return
    full = (out.shape[0], *(d * b for d, b in zip(x.shape[1:], block)), *x.shape[1 + m:])
    tmp = ctx.temp(4 * prod(full), "uncropped")
    _batch_to_space(ctx, block, [0] * m, x.shape[1:1 + m], tmp)
    fst = strides(full)
    copy(ctx, tmp, ctx.device_output(), out.shape, fst, src_base=sum(lo * s for (lo, _), s in zip(crops, fst[1:])))


def _batch_to_space_ref(attrs, x, block, crops):
    """TF's definition: split the batch into (block..., batch / prod(block)), interleave each block dim
    after its spatial dim, merge the pairs, crop."""
    block = [int(b) for b in np.reshape(block, -1)]
    m = len(block)
    n = x.shape[0] // prod(block)
    r = x.reshape(*block, n, *x.shape[1:])
    perm = [m, *(v for i in range(m) for v in (m + 1 + i, i)), *range(2 * m + 1, r.ndim)]
    full = r.transpose(perm).reshape(n, *(d * b for d, b in zip(x.shape[1:], block)), *x.shape[1 + m:])
    crop = [slice(lo, d - hi) for d, (lo, hi) in zip(full.shape[1:], np.reshape(crops, (m, 2)).tolist())]
    return full[(slice(None), *crop)]


register("BatchToSpaceND", grad=moved_grad("BatchToSpaceND"),
         reference=_batch_to_space_ref, shape=_batch_to_space_shape,
         lower=_batch_to_space_lower, host_inputs=(1, 2), dtypes=(F, I),
         cases=[_block_case((4, 3, 3, 2), F, [2, 2], [[0, 0], [0, 0]], "no crops: one copy"),
                _block_case((8, 2, 3, 3), F, [2, 4], [[1, 0], [2, 3]], "partial blocks: copy, then crop"),
                _block_case((4, 3, 3, 1), I, [2, 2], [[0, 2], [2, 0]], "whole-block crops: one copy"),
                _block_case((6, 4, 5), F, [3], [[1, 1]], "one spatial dim"),
                _block_case((12, 2, 3, 1, 2), I, [2, 3, 2], [[1, 0], [0, 2], [0, 1]], "three spatial dims"),
                _block_case((6, 2, 3), F, [2, 3], [[0, 1], [1, 1]], "no depth dims"),
                _block_case((16, 2, 2, 37), F, [4, 4], [[0, 3], [2, 1]], "depth 37: several runs"),
                _block_case((4, 2, 2, 1), F, [2, 2], [[2, 2], [0, 0]], "everything cropped"),
                _block_case((2, 5, 3), F, [1], [[1, 2]], "block 1: a slice"),
                _block_case((2, 2, 3), F, [1, 1], [[0, 0], [0, 0]], "block 1, no crops: alias"),
                _block_case((2, 3), I, [], [], "no block dims: alias")])


# ---------------------------------------------------------------------- concatenate / split
def _into(ctx, src, dst, axis: int, out_shape, piece: int, offset: int) -> None:
    """Copy ``src``, holding ``piece`` indices of ``axis``, into ``dst`` at ``offset`` along it."""
    outer, inner = prod(out_shape[:axis]), prod(out_shape[axis + 1:])
    copy(ctx, src, dst, (outer, piece * inner), (piece * inner, 1), dst_strides=(out_shape[axis] * inner, 1),
         dst_base=offset * inner)


def _out_of(ctx, i: int, inp: int, axis: int, piece: int, offset: int) -> None:
    """Output ``i``: indices [offset, offset + piece) of ``axis`` of input ``inp`` (alias when all)."""
    shape = ctx.inputs[inp].shape
    if piece == shape[axis]:
        ctx.alias(i, inp)
        return
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1:])
    copy(ctx, ctx.inputs[inp], ctx.device_output(i), (outer, piece * inner), (shape[axis] * inner, 1),
         src_base=offset * inner)


def _concat_shape(attrs, ins):
    vals = ins[:-1]
    rank = vals[0].rank
    axis = normalize_axis(_ints(ins[-1], "ConcatV2's axis")[0], rank)
    for t in vals:
        if t.rank != rank or any(a != b for k, (a, b) in enumerate(zip(t.shape, vals[0].shape)) if k != axis):
            raise ValueError(f"cannot concatenate shapes {[v.shape for v in vals]} along axis {axis}")
    shape = list(vals[0].shape)
    shape[axis] = sum(t.shape[axis] for t in vals)
    return [(tuple(shape), vals[0].dtype)]


def _concat_lower(ctx):
    vals, out = ctx.inputs[:-1], ctx.outputs[0]
    axis = normalize_axis(int(np.reshape(ctx.value(-1), -1)[0]), out.rank)
    live = [i for i, t in enumerate(vals) if t.size]
    if len(live) == 1 and vals[live[0]].size == out.size:
        ctx.alias(0, live[0])
        return
    dst, offset = ctx.device_output(), 0
    for t in vals:
        _into(ctx, t, dst, axis, out.shape, t.shape[axis], offset)
        offset += t.shape[axis]


register("ConcatV2", grad=_concat_grad,
         reference=lambda attrs, *xs: np.concatenate(xs[:-1], axis=int(np.reshape(xs[-1], -1)[0])),
         shape=_concat_shape, lower=_concat_lower, host_inputs=(-1,), dtypes=ALL,
         rows=_along(lambda attrs, ins, outs: axis(first(ins[-1]), rank(outs)), ranks_agree=True),
         cases=[Case([((2, 3), F), ((2, 4), F), ((2, 1), F), np.array(1, np.int32)], tf_inputs=[[0, 1, 2], 3]),
                Case([((2, 3, 4), I), ((1, 3, 4), I), np.array(-3, np.int32)], tf_inputs=[[0, 1], 2],
                     note="axis 0, negative"),
                Case([((1, 2, 2, 3), F), ((1, 2, 2, 5), F), ((1, 2, 2, 1), F), ((1, 2, 2, 2), F),
                      np.array(3, np.int32)], tf_inputs=[[0, 1, 2, 3], 4], note="NHWC channels, 4 inputs"),
                Case([((3, 2), B), ((3, 0), B), np.array(1, np.int32)], tf_inputs=[[0, 1], 2],
                     note="an empty input: alias")])


def _pack_shape(attrs, ins):
    shape = ins[0].shape
    if any(t.shape != shape for t in ins):
        raise ValueError(f"Pack needs equal shapes, got {[t.shape for t in ins]}")
    axis = normalize_axis(int(attrs.get("axis") or 0), len(shape) + 1)
    return [(shape[:axis] + (len(ins),) + shape[axis:], ins[0].dtype)]


def _pack_lower(ctx):
    out = ctx.outputs[0]
    axis = normalize_axis(int(ctx.attrs.get("axis") or 0), out.rank)
    if len(ctx.inputs) == 1:
        ctx.alias()
        return
    dst = ctx.device_output()
    for i, t in enumerate(ctx.inputs):
        _into(ctx, t, dst, axis, out.shape, 1, i)


register("Pack", grad=_pack_grad,
         reference=lambda attrs, *xs: np.stack(xs, axis=int(attrs.get("axis") or 0)),
         shape=_pack_shape, lower=_pack_lower, dtypes=ALL,
         rows=_along(lambda attrs, ins, outs: axis(attrs.get("axis"), rank(outs))),
         cases=[Case([((2, 3), F)] * 3, tf_inputs=[[0, 1, 2]]),
                Case([((2, 3), I)] * 2, attrs={"axis": 1}, tf_inputs=[[0, 1]]),
                Case([((4,), B)] * 3, attrs={"axis": -1}, tf_inputs=[[0, 1, 2]]),
                Case([((), F)] * 4, tf_inputs=[[0, 1, 2, 3]], note="scalars"),
                Case([((3, 2), F)], tf_inputs=[[0]], note="one input")])


def _unpack_axis(attrs, shape) -> int:
    axis = normalize_axis(int(attrs.get("axis") or 0), len(shape))
    num = attrs.get("num")
    if num is not None and int(num) != shape[axis]:
        raise ValueError(f"Unpack num={num} but dim {axis} of {shape} has size {shape[axis]}")
    return axis


def _unpack_shape(attrs, ins):
    shape = ins[0].shape
    axis = _unpack_axis(attrs, shape)
    return [(shape[:axis] + shape[axis + 1:], ins[0].dtype)] * shape[axis]


def _unpack_lower(ctx):
    axis = _unpack_axis(ctx.attrs, ctx.inputs[0].shape)
    for i in range(len(ctx.outputs)):
        _out_of(ctx, i, 0, axis, 1, i)


register("Unpack", grad=_unpack_grad,
         reference=lambda attrs, x: tuple(np.moveaxis(x, int(attrs.get("axis") or 0), 0)),
         shape=_unpack_shape, lower=_unpack_lower, dtypes=ALL,
         rows=_along(lambda attrs, ins, outs: axis(attrs.get("axis"), len(ins[0].shape))),
         cases=[Case([((3, 4), F)], attrs={"num": 3}),
                Case([((2, 3, 5), I)], attrs={"num": 3, "axis": 1}),
                Case([((2, 4), B)], attrs={"num": 4, "axis": -1}),
                Case([((1, 5), F)], attrs={"num": 1}, note="alias")])


def _split_sizes(attrs, ins) -> tuple[int, list[int]]:
    """(axis, size of each piece) for Split (axis, value) and SplitV (value, size_splits, axis)."""
    if len(ins) == 2:
        x = ins[1]
        axis = normalize_axis(_ints(ins[0], "Split's axis")[0], x.rank)
        n = int(attrs.get("num_split") or 1)
        if x.shape[axis] % n:
            raise ValueError(f"Split: dim {axis} of {x.shape} is not divisible into {n} pieces")
        return axis, [x.shape[axis] // n] * n
    x = ins[0]
    axis = normalize_axis(_ints(ins[2], "SplitV's axis")[0], x.rank)
    sizes = _ints(ins[1], "SplitV's size_splits")
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        raise ValueError(f"size_splits {sizes} may hold one -1 and no other negative size")
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    if sum(sizes) != x.shape[axis] or min(sizes) < 0:
        raise ValueError(f"size_splits {sizes} do not add up to dim {axis} of {x.shape}")
    return axis, sizes


def _split_shape(attrs, ins):
    x = ins[1] if len(ins) == 2 else ins[0]
    axis, sizes = _split_sizes(attrs, ins)
    return [(x.shape[:axis] + (s,) + x.shape[axis + 1:], x.dtype) for s in sizes]


def _split_lower(ctx):
    axis, sizes = _split_sizes(ctx.attrs, ctx.inputs)
    value = 1 if len(ctx.inputs) == 2 else 0     # Split (axis, value) or SplitV (value, sizes, axis)
    offset = 0
    for i, s in enumerate(sizes):
        _out_of(ctx, i, value, axis, s, offset)
        offset += s


def _split_ref(attrs, axis, x):
    return tuple(np.split(x, int(attrs.get("num_split") or 1), axis=int(np.reshape(axis, -1)[0])))


def _splitv_ref(attrs, x, sizes, axis):
    axis = int(np.reshape(axis, -1)[0])
    sizes = [int(s) for s in sizes]
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - sum(s for s in sizes if s != -1)
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


register("Split", grad=_split_grad,
         reference=_split_ref, shape=_split_shape, lower=_split_lower,
         host_inputs=(0,), dtypes=ALL, rows=_along(lambda attrs, ins, outs: axis(first(ins[0]), rank(outs))),
         cases=[Case([np.array(1, np.int32), ((2, 6, 3), F)], attrs={"num_split": 3}),
                Case([np.array(-1, np.int32), ((4, 4), I)], attrs={"num_split": 2}),
                Case([np.array(0, np.int32), ((3, 2), B)], attrs={"num_split": 3}),
                Case([np.array(0, np.int32), ((3, 2), F)], attrs={"num_split": 1}, note="alias")])
register("SplitV", grad=_splitv_grad,
         reference=_splitv_ref, shape=_split_shape, lower=_split_lower,
         host_inputs=(1, 2), dtypes=ALL, rows=_along(lambda attrs, ins, outs: axis(first(ins[2]), rank(outs))),
         cases=[Case([((2, 7, 3), F), np.array([2, -1, 1], np.int32), np.array(1, np.int32)],
                     attrs={"num_split": 3}, note="-1"),
                Case([((5, 2), I), np.array([1, 0, 4], np.int32), np.array(0, np.int32)], attrs={"num_split": 3},
                     note="an empty piece"),
                Case([((3, 4), B), np.array([3, 1], np.int32), np.array(-1, np.int32)], attrs={"num_split": 2})])


# ------------------------------------------------------------------------------------ slices
def _slice_spec(ins) -> tuple[list[int], list[int]]:
    x = ins[0]
    begin, size = _ints(ins[1], "Slice's begin"), _ints(ins[2], "Slice's size")
    if len(begin) != x.rank or len(size) != x.rank:
        raise ValueError(f"Slice's begin {begin} and size {size} must have {x.rank} values")
    size = [d - b if s == -1 else s for d, b, s in zip(x.shape, begin, size)]
    if any(b < 0 or s < 0 or b + s > d for d, b, s in zip(x.shape, begin, size)):
        raise ValueError(f"Slice begin {begin} size {size} is outside shape {x.shape}")
    return begin, size


def _slice_lower(ctx):
    x = ctx.inputs[0]
    begin, size = _slice_spec(ctx.inputs)
    st = strides(x.shape)
    view(ctx, size, st, src_base=sum(b * s for b, s in zip(begin, st)))


def _slice_ref(attrs, x, begin, size):
    return x[tuple(slice(int(b), None if s == -1 else int(b) + int(s)) for b, s in zip(begin, size))]


register("Slice", grad=moved_grad("Slice"),
         reference=_slice_ref,
         shape=lambda attrs, ins: [(tuple(_slice_spec(ins)[1]), ins[0].dtype)], lower=_slice_lower,
         host_inputs=(1, 2), dtypes=ALL,
         rows=lambda name, attrs, ins, outs: None if int(first(ins[1])) == 0 else "slices the batch",
         cases=[Case([((4, 5, 6), F), np.array([1, 0, 2], np.int32), np.array([2, -1, 3], np.int32)]),
                Case([((7,), I), np.array([3], np.int32), np.array([4], np.int32)]),
                Case([((3, 3), B), np.array([1, 1], np.int32), np.array([2, 1], np.int32)]),
                Case([((3, 4), F), np.array([0, 0], np.int32), np.array([-1, -1], np.int32)], note="all: alias"),
                Case([((3, 4), F), np.array([1, 2], np.int32), np.array([0, 2], np.int32)], note="empty")])


_MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")


def _strided_slice_spec(attrs, shape, begin, end, step):
    """TF's StridedSlice semantics: for every input dim (start, step, size), and the output shape."""
    bm, em, ell, new, shrink = (int(attrs.get(k) or 0) for k in _MASKS)
    if not len(begin) == len(end) == len(step):
        raise ValueError(f"begin {begin}, end {end} and strides {step} must have equal lengths")
    if bin(ell).count("1") > 1:
        raise ValueError("StridedSlice allows one ellipsis")
    dense, out, dim = [], [], 0

    def full():
        nonlocal dim
        dense.append((0, 1, shape[dim]))
        out.append(shape[dim])
        dim += 1

    for i in range(len(begin)):
        bit = 1 << i
        if ell & bit:
            covered = len(shape) - sum(1 for j in range(len(begin)) if j != i and not new & (1 << j))
            for _ in range(covered):
                full()
        elif new & bit:
            out.append(1)
        else:
            if dim >= len(shape):
                raise ValueError(f"StridedSlice indexes {len(begin)} dims of a rank-{len(shape)} tensor")
            d, s = shape[dim], step[i]
            if s == 0:
                raise ValueError("StridedSlice strides must not be 0")
            if shrink & bit:
                b = begin[i] + d if begin[i] < 0 else begin[i]
                if s < 0 or not 0 <= b < d:                 # TF: any positive stride
                    raise ValueError(f"StridedSlice index {begin[i]} (stride {s}) is invalid for size {d}")
                dense.append((b, 1, 1))
            else:
                start, stop, s = slice(None if bm & bit else begin[i], None if em & bit else end[i], s).indices(d)
                size = len(range(start, stop, s))
                dense.append((start, s, size))
                out.append(size)
            dim += 1
    while dim < len(shape):
        full()
    return dense, tuple(out)


def _ss_args(ins):
    """StridedSlice's begin, end and strides as lists of ints."""
    return [_ints(t, "StridedSlice's begin/end/strides") for t in ins[1:4]]


def _strided_slice_lower(ctx):
    x = ctx.inputs[0]
    dense, _ = _strided_slice_spec(ctx.attrs, x.shape, *_ss_args(ctx.inputs))
    st = strides(x.shape)
    view(ctx, [n for _, _, n in dense], [s * k for (_, k, _), s in zip(dense, st)],
         src_base=sum(b * s for (b, _, _), s in zip(dense, st)))


def _strided_slice_ref(attrs, x, begin, end, step):
    bm, em, ell, new, shrink = (int(attrs.get(k) or 0) for k in _MASKS)
    index = []
    for i, (b, e, s) in enumerate(zip(begin, end, step)):
        bit = 1 << i
        if ell & bit:
            index.append(Ellipsis)
        elif new & bit:
            index.append(np.newaxis)
        elif shrink & bit:
            index.append(int(b))
        else:
            index.append(slice(None if bm & bit else int(b), None if em & bit else int(e), int(s)))
    return np.array(x[tuple(index)])


def _ss_case(shape, dtype, begin, end, step, note="", **masks):
    return Case([(shape, dtype), *(np.array(v, np.int32) for v in (begin, end, step))], attrs=masks, note=note)


def _strided_slice_rows(name, attrs, ins, outs):
    def bit(mask):
        return int(attrs.get(mask) or 0) & 1
    if bit("ellipsis_mask"):
        return None
    begin, strides = np.reshape(ins[1].value, -1), np.reshape(ins[3].value, -1) if len(ins) > 3 else [1]
    if bit("new_axis_mask") or bit("shrink_axis_mask") or int(strides[0]) != 1:
        return "slices the batch"
    return None if bit("begin_mask") or int(begin[0]) == 0 else "slices the batch"


register("StridedSlice", grad=moved_grad("StridedSlice"), rows=_strided_slice_rows,
         reference=_strided_slice_ref,
         shape=lambda attrs, ins: [(_strided_slice_spec(attrs, ins[0].shape, *_ss_args(ins))[1], ins[0].dtype)],
         lower=_strided_slice_lower, host_inputs=(1, 2, 3), dtypes=ALL,
         cases=[_ss_case((5, 6), F, [1, 0], [4, 6], [1, 2], "plain"),
                _ss_case((5, 6), F, [4, -1], [0, -7], [-1, -2], "negative strides"),
                _ss_case((5, 6), I, [-2, 10], [-9, -10], [-2, -3], "negative strides, clamped"),
                _ss_case((5, 6), F, [3, 5], [1, 0], [1, 1], "empty"),
                _ss_case((4, 5, 6), F, [1, 2, 3], [3, 4, 5], [1, 1, 1], "begin_mask", begin_mask=5),
                _ss_case((4, 5, 6), F, [1, 2, 3], [3, 4, 5], [1, -1, 1], "end_mask", end_mask=6),
                _ss_case((4, 5, 6), F, [3, 1, 4], [0, 4, 0], [-1, 1, -2], "begin+end masks, reversed",
                         begin_mask=7, end_mask=1),
                _ss_case((2, 3, 4, 5), F, [1, 0, 1], [2, 0, 4], [1, 1, 2], "ellipsis in the middle",
                         ellipsis_mask=2),
                _ss_case((2, 3, 4, 5), I, [0, 1], [0, 3], [1, 1], "leading ellipsis", ellipsis_mask=1),
                _ss_case((4, 5), F, [1, 0, 2], [2, 0, 4], [1, 1, 1], "new axis", new_axis_mask=2),
                _ss_case((4, 5), B, [-1, 0], [0, 0], [1, 1], "shrink last row (-1)", shrink_axis_mask=1,
                         end_mask=2),
                _ss_case((3, 4, 5), F, [1, 2, 3], [2, 3, 4], [1, 2, 3], "shrink all to a scalar, strides > 1",
                         shrink_axis_mask=7),
                _ss_case((3, 4, 5), F, [0, 2, 0, 1], [0, 3, 0, 1], [1, 1, 1, -1],
                         "new axis + shrink + ellipsis + begin mask", new_axis_mask=1, shrink_axis_mask=2,
                         ellipsis_mask=4, begin_mask=8),
                _ss_case((3, 4), F, [0, 0, 1], [0, 0, 3], [1, 1, 1], "ellipsis and new axis bits: ellipsis wins",
                         ellipsis_mask=1, new_axis_mask=3),
                _ss_case((6, 4), I, [1, 0], [5, 0], [2, 1], "end mask, new axis ignores begin/end",
                         end_mask=2, new_axis_mask=2, shrink_axis_mask=2),
                _ss_case((3, 4, 5), F, [0, 1], [0, 2], [1, 1], "shape arithmetic style: shrink after ellipsis",
                         ellipsis_mask=1, shrink_axis_mask=2),
                _ss_case((8,), F, [0], [8], [1], "everything: alias")])


# ------------------------------------------------------------------------------------ gathers
def _gather_params(attrs, ins):
    """(batch_dims, axis) of a GatherV2, both non-negative, validated against TF's rules."""
    params, indices = ins[0], ins[1]
    axis = _ints(ins[2], "GatherV2's axis")[0]
    bd = int(attrs.get("batch_dims") or 0)
    if bd < 0:
        bd += indices.rank
    axis = normalize_axis(axis, params.rank)
    if not 0 <= bd <= min(indices.rank, axis):
        raise ValueError(f"batch_dims {attrs.get('batch_dims')} must be in [0, min(indices rank, axis)]")
    if params.shape[:bd] != indices.shape[:bd]:
        raise ValueError(f"params {params.shape} and indices {indices.shape} differ in the batch dims")
    return bd, axis


def _gather_shape(attrs, ins):
    bd, axis = _gather_params(attrs, ins)
    p, i = ins[0].shape, ins[1].shape
    return [(p[:axis] + i[bd:] + p[axis + 1:], ins[0].dtype)]


def _gather_lower(ctx):
    """GatherV2 on the GPU. Indices outside [0, params.shape[axis]) give zeros: TF raises on the
    CPU, a kernel cannot."""
    params, indices, out = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    bd, axis = _gather_params(ctx.attrs, ctx.inputs)
    p = params.shape
    inner = prod(p[axis + 1:])
    _gather(ctx, params, indices, out, outer=prod(p[bd:axis]), rows=prod(indices.shape[bd:]), inner=inner,
            batch_stride=prod(p[bd:]), outer_stride=p[axis] * inner, idx_strides=[inner], bounds=[p[axis]])


def _gather(ctx, params, indices, out, *, outer, rows, inner, batch_stride, outer_stride, idx_strides, bounds):
    """One launch of gather.wgsl (see the kernel for the index formula)."""
    run = run_length(ctx)
    runs = -(-inner // run)
    launches = out.size // inner * runs
    ctx.dispatch("gather.wgsl", [params, indices, ctx.device_output()], grid_1d(launches), constants={"RUN": run},
                 params={"n": launches, "O": outer, "I": rows, "K": inner, "M": len(bounds), "sb": batch_stride,
                         "so": outer_stride, "ib": rows, "runs": runs,
                         "index": [{"stride": int(s), "bound": int(b)} for s, b in zip(idx_strides, bounds)]})


def _gather_ref(attrs, params, indices, axis):
    axis = int(np.reshape(axis, -1)[0]) % params.ndim
    bd = int(attrs.get("batch_dims") or 0)
    bd = bd + indices.ndim if bd < 0 else bd
    if bd == 0:
        return np.take(params, indices, axis=axis)
    out_shape = params.shape[:axis] + indices.shape[bd:] + params.shape[axis + 1:]
    pieces = [np.take(p, i, axis=axis - bd) for p, i in zip(params.reshape((-1,) + params.shape[bd:]),
                                                            indices.reshape((-1,) + indices.shape[bd:]))]
    return np.stack(pieces).reshape(out_shape) if pieces else np.zeros(out_shape, params.dtype)


def _gather_rows(name, attrs, ins, outs):
    batch = dev(ins)
    ax = axis(first(ins[2]), len(ins[0].shape)) if name == "GatherV2" and len(ins) > 2 else 0
    if ax >= 1 and ins[1].value is not None and 0 in batch:
        return None                       # a gather inside each row
    if ax == 0 and int(attrs.get("batch_dims") or 0) == 0 and batch == [1]:
        return None                       # a lookup in a constant table (embeddings)
    return "gathers across rows"


register("GatherV2", grad=moved_grad("GatherV2"), rows=_gather_rows,
         reference=_gather_ref, shape=_gather_shape, lower=_gather_lower,
         host_inputs=(2,), dtypes=ALL,
         cases=[Case([((5, 3), F), ((4,), I, 0, 4), np.array(0, np.int32)], note="rows"),
                Case([((2, 6, 3), I), ((2, 2), I, 0, 5), np.array(1, np.int32)], note="middle axis, 2-D indices"),
                Case([((4, 5), B), ((), I, 0, 4), np.array(-1, np.int32)], note="scalar index, last axis"),
                Case([((2, 4, 3), F), ((2, 5), I, 0, 3), np.array(1, np.int32)], attrs={"batch_dims": 1},
                     note="batch_dims 1"),
                Case([((2, 3, 4, 2), F), ((2, 3, 2), I, 0, 3), np.array(2, np.int32)], attrs={"batch_dims": -1},
                     note="batch_dims -1 (= 2), axis 2"),
                Case([((2, 3, 5), I), ((2, 4), I, 0, 4), np.array(2, np.int32)], attrs={"batch_dims": 1},
                     note="batch_dims 1 < axis 2"),
                Case([((3, 4), F), ((0,), I), np.array(0, np.int32)], note="no indices"),
                Case([((6, 35), F), ((3, 2), I, 0, 5), np.array(0, np.int32)], note="rows of 35: several runs")])


def _gather_nd_dims(ins) -> int:
    params, indices = ins[0].shape, ins[1].shape
    m = indices[-1] if indices else -1
    if not 0 <= m <= len(params) or m > 8:
        raise ValueError(f"GatherNd indices {indices} must end in a dim of at most min(rank {len(params)}, 8)")
    return m


def _gather_nd_lower(ctx):
    """GatherNd on the GPU. An index tuple outside params' shape gives zeros: TF raises on the
    CPU, a kernel cannot."""
    params, indices, out = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    m = _gather_nd_dims(ctx.inputs)
    inner = prod(params.shape[m:])
    _gather(ctx, params, indices, out, outer=1, rows=prod(indices.shape[:-1]), inner=inner, batch_stride=0,
            outer_stride=0, idx_strides=strides(params.shape)[:m], bounds=params.shape[:m])


def _gather_nd_ref(attrs, params, indices):
    m = indices.shape[-1]
    if m == 0:
        return np.broadcast_to(params, indices.shape[:-1] + params.shape).copy()
    return params[tuple(np.moveaxis(indices, -1, 0))]


register("GatherNd", grad=moved_grad("GatherNd"),
         reference=_gather_nd_ref,
         shape=lambda attrs, ins: [(ins[1].shape[:-1] + ins[0].shape[_gather_nd_dims(ins):], ins[0].dtype)],
         lower=_gather_nd_lower, dtypes=ALL,
         cases=[Case([((4, 5, 3), F), ((2, 3, 2), I, 0, 3)], note="pairs of indices -> rows"),
                Case([((4, 5), I), ((6, 2), I, 0, 3)], note="full tuples -> elements"),
                Case([((4, 5), B), ((3, 1), I, 0, 3)]),
                Case([((3, 2, 2), F), ((2, 0), I)], note="empty tuples: whole params")])


# ------------------------------------------------------------------------------ BroadcastTo
def _broadcast_shape(attrs, ins):
    shape = tuple(int(d) for d in np.reshape(host_value(ins[1], "BroadcastTo's shape"), -1))
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
         rows=lambda name, attrs, ins, outs: None if len(ins[0].shape) == rank(outs) else BROADCASTS,
         cases=[Case([((3, 1), F), np.array([2, 3, 4], np.int32)]),
                Case([((1, 4), I), np.array([3, 4], np.int32)]),
                Case([((), B), np.array([2, 2], np.int32)], note="scalar"),
                Case([((2, 3), F), np.array([2, 3], np.int32)], note="same shape: alias")])


# ------------------------------------------------------------------ EnsureShape, BroadcastArgs
def _ensure_shape(attrs, ins):
    want = attrs.get("shape")
    if want is not None and (len(want) != ins[0].rank or any(w not in (-1, d) for w, d in zip(want, ins[0].shape))):
        raise ValueError(f"EnsureShape: shape {ins[0].shape} is not compatible with {list(want)}")
    return [(ins[0].shape, ins[0].dtype)]


register("EnsureShape", reference=lambda attrs, x: x, shape=_ensure_shape,
         lower=lambda ctx: ctx.alias(), dtypes=(F, I, B), rows=row_wise,
         cases=[Case([((2, 3), F)], attrs={"shape": [-1, 3]})])
register("BroadcastArgs", reference=lambda attrs, a, b: np.array(broadcast(tuple(a), tuple(b)), a.dtype),
         shape=lambda attrs, ins: [((max(ins[0].size, ins[1].size),), I)], dtypes=(I,),
         cases=[Case([np.array([2, 1, 3], np.int32), np.array([4, 1], np.int32)])])


# ------------------------------------------ Concat, Gather (TF.js's names: ConcatV2, GatherV2)
def _concat_v1_shape(attrs, ins):
    return _concat_shape(attrs, [*ins[1:], ins[0]])


register("Concat", reference=lambda attrs, axis, *xs: np.concatenate(xs, axis=int(np.reshape(axis, -1)[0])),
         shape=_concat_v1_shape, lower=lambda ctx: ctx.lower_op("ConcatV2", [*ctx.inputs[1:], ctx.inputs[0]]),
         host_inputs=(0,), dtypes=(F, I, B),
         rows=_along(lambda attrs, ins, outs: axis(first(ins[0]), rank(outs)), ranks_agree=True),
         cases=[Case([np.array(1, np.int32), ((2, 3), F), ((2, 2), F)], tf_inputs=[0, [1, 2]])])


def _axis0():
    return Tensor((), I, value=np.array(0, np.int32))


register("Gather", reference=lambda attrs, p, i: np.take(p, i, axis=0), rows=_gather_rows,
         shape=lambda attrs, ins: _gather_shape({}, [*ins, _axis0()]),
         lower=lambda ctx: ctx.lower_op("GatherV2", [*ctx.inputs, _axis0()]), dtypes=(F, I, B),
         cases=[Case([((5, 3), F), ((2, 2), I, 0, 4)])])


# ------------------------------------------------------------------------- ReverseV2, Reverse
def _reverse_axes(ctx_or_ins, op, rank):
    t = ctx_or_ins[1]
    v = np.reshape(host_value(t, "the reversed axes"), -1)
    if op == "Reverse":
        if v.size != rank:
            raise ValueError(f"Reverse needs {rank} booleans, got {v.size}")
        return {k for k in range(rank) if v[k]}
    return {normalize_axis(int(a), rank) for a in v}


def _reverse_lower(ctx):
    x = ctx.inputs[0]
    axes = _reverse_axes(ctx.inputs, ctx.node.op, x.rank)
    if not any(x.shape[a] > 1 for a in axes):
        ctx.alias()
        return
    st = strides(x.shape)
    base = sum((x.shape[a] - 1) * st[a] for a in axes)
    copy(ctx, x, ctx.device_output(), x.shape, [-s if a in axes else s for a, s in enumerate(st)], src_base=base)


def _reverse_ref(attrs, x, axes):
    v = np.reshape(axes, -1)
    ax = [k for k in range(x.ndim) if v[k]] if v.dtype == np.bool_ else [int(a) % x.ndim for a in v]
    return np.flip(x, ax).copy() if ax else x


def _reverse_rows(name, attrs, ins, outs):
    v = np.reshape(ins[1].value, -1)
    hit = bool(v[0]) if name == "Reverse" else any(int(a) % rank(outs) == 0 for a in v)
    return "reverses the batch" if hit else None


register("ReverseV2", reference=_reverse_ref, rows=_reverse_rows,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_reverse_lower, host_inputs=(1,),
         dtypes=(F, I, B),
         cases=[Case([((3, 4, 5), F), np.array([0, 2], np.int32)]), Case([((6,), I), np.array([-1], np.int32)]),
                Case([((2, 3), B), np.array([], np.int32)], note="no axes: alias")])
register("Reverse", reference=_reverse_ref, rows=_reverse_rows,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_reverse_lower, host_inputs=(1,),
         dtypes=(F, I, B), cases=[Case([((3, 4), F), np.array([True, False])]),
                                  Case([((2, 3, 2), I), np.array([False, True, True])])])


# ------------------------------------------------------------------------------- scatters
def _scatter_rows(ctx, indices, updates, dst, out_shape, scalar=False):
    depth = indices.shape[-1] if indices.rank else 1
    rows = indices.size // max(depth, 1) if indices.rank else 1
    inner = prod(out_shape[depth:])
    n = rows * inner
    if n == 0:          # no rows (empty indices): the output keeps its base values
        return
    if depth > 8:
        raise ValueError("scatter indices deeper than 8 are not supported")
    bounds, st = vec8(out_shape[:depth]), vec8(strides(out_shape[:depth]))
    ctx.dispatch("scatter.wgsl", [indices, updates, dst], grid_1d(n),
                 params={"n": n, "depth": depth, "inner": inner,
                         "bounds_lo": bounds[:4], "bounds_hi": bounds[4:], "strides_lo": st[:4], "strides_hi": st[4:]},
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
    copy(ctx, default, dst, (out.size,), (0,))                # every element: the default value
    idx_t = idx if idx.rank == 2 else Tensor(tuple(idx.shape) + (1,), idx.dtype, idx.value, idx.buf, idx.weight_key)
    _scatter_rows(ctx, idx_t, values, dst, out.shape, scalar=values.rank == 0)


register("SparseToDense", reference=_sparse_to_dense_ref,
         shape=lambda attrs, ins: [(tuple(int(d) for d in np.reshape(host_value(ins[1], "output_shape"), -1)), ins[2].dtype)],
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
         shape=lambda attrs, ins: [(tuple(int(d) for d in np.reshape(host_value(ins[2], "shape"), -1)), ins[1].dtype)],
         dtypes=(F, I),
         cases=[Case([np.array([[1], [3], [1]], np.int32), quarters((3, 2), 5), np.array([5, 2], np.int32)],
                     note="duplicate indices add")])
