"""MatMul, _FusedMatMul, BatchMatMul, BatchMatMulV2: C = op(A) x op(B) over (broadcast) batch
dimensions, with the fused epilogue of _FusedMatMul ([BiasAdd, Add (a residual)?, activation?]).

The kernel (kernels/matmul.wgsl) is register-blocked, TM rows x 4*TN4 columns per invocation,
reading A as vec4 along K and B as vec4 along N. Operands that are transposed or whose K / N are
not multiples of 4 are repacked first (on the host for weights, once per model; on the GPU
otherwise). K longer than K4_CHUNK vec4 steps is split into partial sums added by a second pass,
so no invocation loops more than llvmpipe's 65535 iterations. Where llvmpipe runs subgroups of 8,
kernels/matmul_subgroup.wgsl (the same product, the 8 lanes of a subgroup sharing B's columns
through broadcasts) is a variant too. Where workgroup memory is fast (real
GPUs), the tiled variants of ops/tiled.py (kernels/matmul_tiled.wgsl) read the same operands instead,
chosen per adapter and shape (wgpu_runtime.tuning). A product of at most 8 rows by a weight has
kernels/matmul_gemv_subgroup.wgsl where the adapter has subgroups: the weight packed transposed
(K contiguous), each subgroup's lanes along K, summed by subgroupAdd.

Einsum (one or two operands, ellipsis, repeated labels): each operand becomes one strided copy
into [batch, free, contracted, summed-away] order (a repeated label is a diagonal: the strides of
its positions add up), labels only one operand has and the output lacks are summed away with the
reduction kernels, then the product is the BatchMatMulV2 lowering (broadcasting batch dims) and
one copy puts the result in output order. No copy is made where the order already matches.

MatrixBandPart: kernels/matrix_band_part.wgsl, one invocation per element."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import precision
from . import fused, tiled
from .common import F, I, cdiv, prod, quarters
from .conv import texture_matmul, use_subgroups
from .launch import WORKGROUP, grid_1d
from .reduce import reduce_passes
from .registry import Case, Tensor, register
from .rows import DATA, from_rank, rank, same_rank
from .shapes import broadcast, broadcast_strides, strides, vec8
from .strided_copy import PAD, copy

K4_CHUNK = 8192   # vec4 K steps one invocation sums (llvmpipe: <= 65535 loop iterations)
_MM = ("transpose_a", "transpose_b")
_BMM = ("adj_x", "adj_y")


@dataclass
class _Dims:
    batch: tuple[int, ...]    # output batch shape
    M: int
    N: int
    K: int
    ta: bool
    tb: bool


def _dims(attrs, a_shape, b_shape, flags, batch_rule) -> _Dims:
    ta, tb = (bool(attrs.get(f)) for f in flags)
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if batch_rule == "none" and (len(a_shape) != 2 or len(b_shape) != 2):
        raise ValueError(f"MatMul needs rank-2 operands, got {a_shape} and {b_shape}")
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise ValueError(f"batch matmul needs operands of rank >= 2, got {a_shape} and {b_shape}")
    if batch_rule == "same" and a_shape[:-2] != b_shape[:-2]:
        raise ValueError(f"BatchMatMul needs equal batch dimensions, got {a_shape} and {b_shape}")
    M, Ka = (a_shape[-1], a_shape[-2]) if ta else a_shape[-2:]
    Kb, N = (b_shape[-1], b_shape[-2]) if tb else b_shape[-2:]
    if Ka != Kb:
        raise ValueError(f"inner dimensions differ: {a_shape} x {b_shape} "
                         f"({flags[0]}={ta}, {flags[1]}={tb})")
    return _Dims(broadcast(a_shape[:-2], b_shape[:-2]), int(M), int(N), int(Ka), ta, tb)


def _shape(flags, batch_rule):
    def shape(attrs, ins):
        if ins[0].dtype != ins[1].dtype:
            raise TypeError(f"operands differ in type: {ins[0].dtype} and {ins[1].dtype}")
        d = _dims(attrs, ins[0].shape, ins[1].shape, flags, batch_rule)
        return [(d.batch + (d.M, d.N), ins[0].dtype)]
    return shape


def _reference(flags, with_epilogue=False):
    def reference(attrs, a, b, *extra):
        ta, tb = (bool(attrs.get(f)) for f in flags)
        a = np.swapaxes(a, -1, -2) if ta else a
        b = np.swapaxes(b, -1, -2) if tb else b
        wide = np.float64 if a.dtype.kind == "f" else np.int64     # int32 wraps, as in TF
        y = np.matmul(a.astype(wide), b.astype(wide)).astype(a.dtype)
        return fused.reference_epilogue(attrs, y, list(extra)) if with_epilogue else y
    return reference


def _grad(flags):
    """C = op(A) op(B): dA = dC op(B)^T, dB = op(A)^T dC, transposed back where the operand was,
    summed over broadcast batch dims."""
    def grad(attrs, ins, outs, dys, needs=None):
        a, b = ins[0], ins[1]
        if a.dtype.kind != "f":
            return [None] * len(ins)
        ta, tb = (bool(attrs.get(f)) for f in flags)
        A = np.swapaxes(a, -1, -2) if ta else a
        B = np.swapaxes(b, -1, -2) if tb else b
        dy = dys[0]
        da = db = None
        if needs is None or needs[0]:
            dA = np.matmul(dy, np.swapaxes(B, -1, -2))
            da = _sum_to(np.swapaxes(dA, -1, -2) if ta else dA, a.shape)
        if needs is None or needs[1]:
            dB = np.matmul(np.swapaxes(A, -1, -2), dy)
            db = _sum_to(np.swapaxes(dB, -1, -2) if tb else dB, b.shape)
        return [da, db] + [None] * (len(ins) - 2)
    return grad


def _sum_to(g: np.ndarray, shape) -> np.ndarray:
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead > 0 else g
    keep = tuple(i for i, d in enumerate(shape[:-2]) if d == 1 and g.shape[i] != 1)
    g = g.sum(axis=keep, keepdims=True) if keep else g
    return np.ascontiguousarray(g, dtype=np.float32).reshape(shape)


# ------------------------------------------------------------------------------------ lowering
def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _batch_layout(out_batch, a_batch, b_batch):
    """Output batch dims merged where both operands step through them contiguously, with each
    operand's stride in matrices (0 where it broadcasts): (shape, a_strides, b_strides)."""
    sa = broadcast_strides(a_batch, out_batch)
    sb = broadcast_strides(b_batch, out_batch)
    dims: list[list[int]] = []
    for size, x, y in zip(out_batch, sa, sb):
        if size == 1:
            continue
        if dims and dims[-1][1] == x * size and dims[-1][2] == y * size:
            dims[-1] = [dims[-1][0] * size, x, y]
        else:
            dims.append([size, x, y])
    if len(dims) > 8:
        raise ValueError(f"batch shape {out_batch} has more than 8 non-mergeable dimensions")
    return [d[0] for d in dims], [d[1] for d in dims], [d[2] for d in dims]


def _operand(ctx, i: int, rows: int, cols: int, transposed: bool, rows_p: int, cols_p: int):
    """Input ``i`` as [batch, rows_p, cols_p] (its logical [rows, cols] matrices, zero padded):
    the input itself when it already is, else repacked (on the host when it is a weight)."""
    t = ctx.inputs[i]
    if not transposed and rows == rows_p and cols == cols_p:
        return t
    nbatch = prod(t.shape[:-2])
    if t.value is not None:
        v = np.swapaxes(t.value, -1, -2) if transposed else t.value
        packed = np.zeros((nbatch, rows_p, cols_p), v.dtype)
        packed[:, :rows, :cols] = v.reshape(nbatch, rows, cols)
        return ctx.constant(packed, t.dtype, f"matmul-operand{i}")
    buf = ctx.temp(4 * nbatch * rows_p * cols_p, f"operand{i}")
    sr, sc = (1, rows) if transposed else (cols, 1)
    n = nbatch * rows_p * cols_p
    ctx.dispatch("matmul_pack.wgsl", [t, buf], grid_1d(n),
                 params={"n": n, "rows": rows, "cols": cols, "rows_p": rows_p, "cols_p": cols_p,
                         "sz": rows * cols, "sr": sr, "sc": sc},
                 template={"T": ctx.wgsl_type(t.dtype)})
    return buf


def _tiles(M: int, N4: int, nz: int) -> tuple[int, int, int]:
    """(TM, WG_X, WG_Y): up to 8 rows x 16 columns per invocation, and workgroups of WORKGROUP
    invocations shaped to the tile grid -- smaller (down to 8) when that leaves fewer than 8
    workgroups, so that small products (M=1) still spread over the CPU threads of llvmpipe."""
    tm = min(8, _pow2(M))
    tiles_m, tiles_n = cdiv(M, tm), cdiv(N4, 4)
    wg_y = min(8, _pow2(tiles_m))
    wg_x = min(WORKGROUP // wg_y, _pow2(tiles_n))
    wg_y = min(WORKGROUP // wg_x, _pow2(tiles_m))
    while wg_x * wg_y > 8 and nz * cdiv(tiles_m, wg_y) * cdiv(tiles_n, wg_x) < 8:
        wg_x, wg_y = (wg_x // 2, wg_y) if wg_x >= wg_y else (wg_x, wg_y // 2)
    return tm, wg_x, wg_y


def _groups(M: int, N4: int, nz: int) -> int:
    """Workgroups matmul.wgsl launches for ``nz`` M x 4*N4 products (_tiles)."""
    tm, wg_x, wg_y = _tiles(M, N4, nz)
    return nz * cdiv(cdiv(M, tm), wg_y) * cdiv(cdiv(N4, 4), wg_x)


def _subgroup_tiles(M: int, N4: int, nz: int) -> tuple[int, int, int]:
    """(TM, WG_X, WG_Y) of matmul_subgroup.wgsl: the 8 lanes of a subgroup along M (WG_X = 8),
    up to TM = 8 rows each, and up to WORKGROUP / 8 subgroups along N -- fewer when that leaves
    fewer than 8 workgroups (to spread over llvmpipe's threads)."""
    tm = min(8, _pow2(cdiv(M, 8)))
    tiles_m, tiles_n = cdiv(M, tm), cdiv(N4, 4)
    wg_y = min(WORKGROUP // 8, _pow2(tiles_n))
    while wg_y > 1 and nz * cdiv(tiles_m, 8) * cdiv(tiles_n, wg_y) < 8:
        wg_y //= 2
    return tm, 8, wg_y


def _crop(ctx, src, dst, nbatch: int, M: int, N: int, Np: int) -> None:
    """dst [.., M, N] = the first N columns of src [.., M, Np]."""
    n = nbatch * M * N
    ctx.dispatch("matmul_pack.wgsl", [src, dst], grid_1d(n),
                 params={"n": n, "rows": M, "cols": N, "rows_p": M, "cols_p": N, "sz": M * Np, "sr": Np, "sc": 1},
                 template={"T": ctx.wgsl_type(ctx.outputs[0].dtype)})


def _lower(flags, batch_rule):
    def lower(ctx):
        a, b = ctx.inputs[:2]
        out = ctx.outputs[0]
        if a.dtype not in (F, I):
            raise TypeError(f"{ctx.node.op} does not support {a.dtype}")
        d = _dims(ctx.attrs, a.shape, b.shape, flags, batch_rule)
        M, N, K = d.M, d.N, d.K
        ctx.device_output()
        ep = fused.parse(ctx.attrs, [t.value for t in ctx.inputs[2:]], N, ctx.node.name)
        if a.dtype != F and (ep.bias is not None or ep.activation):
            raise TypeError(f"fused epilogues need float32, got {a.dtype}")
        K4, N4 = cdiv(K, 4), cdiv(N, 4)
        nbatch = prod(d.batch)
        weight = b.value is not None and len(a.shape) == len(b.shape) == 2
        texture = weight and K > 0 and a.dtype == F and ep.residual_index is None
        half = ctx.half and a.dtype == F        # f16 tiles and accumulators (precision.py)
        gemv = weight and a.dtype == F and "subgroup" in ctx.device.features
        variant = tiled.matmul_variant(ctx.device, M, N, K, nbatch, subgroup=use_subgroups(ctx.device),
                                       texture=texture, half=half, blocked_groups=_groups(M, N4, nbatch),
                                       gemv=gemv and not half)
        if variant.name == tiled.TEXTURE.name:
            w = np.asarray(b.value, np.float32)
            texture_matmul(ctx, _operand(ctx, 0, M, K, d.ta, M, 4 * K4), w.T if d.tb else w, M, K4)
            return
        if variant.name == tiled.GEMV.name:
            _gemv(ctx, ep, _operand(ctx, 0, M, K, d.ta, M, 4 * K4), np.asarray(b.value, np.float32), d.tb, M, N, K4)
            return
        if K:
            mat_a = _operand(ctx, 0, M, K, d.ta, M, 4 * K4)
            mat_b = _operand(ctx, 1, K, N, d.tb, 4 * K4, 4 * N4)
        else:   # nothing to read, but a vec4 binding needs 16 bytes
            mat_a = mat_b = ctx.constant(np.zeros(4, np.float32), a.dtype, "empty-operand")
        shape, sa, sb = _batch_layout(d.batch, a.shape[:-2], b.shape[:-2])
        sub = variant.name == tiled.SUBGROUP.name
        tile = variant.get("tile")
        blocked = tile is None          # matmul.wgsl / matmul_subgroup.wgsl (regblock, its split-K form)
        chunk = K4_CHUNK if blocked else tile.k4_chunk()
        if variant.get("split"):        # split-K: as many K chunks as fill the GPU (tiled.split_chunk)
            groups = _groups(M, N4, nbatch) if blocked else tile.groups(M, 4 * N4, nbatch)
            chunk = tiled.split_chunk(K4, 1 if blocked else tile.bk // 4, groups, chunk) or chunk
        splits = max(1, cdiv(K4, chunk))
        tm, wg_x, wg_y = (_subgroup_tiles if sub else _tiles)(M, N4, nbatch * splits)
        tiles_m, tiles_n = cdiv(M, tm), cdiv(N4, 4)
        wg_m, wg_n = (wg_x, wg_y) if sub else (wg_y, wg_x)     # the subgroup kernel's rows run along x
        groups_m, groups_n = cdiv(tiles_m, wg_m), cdiv(tiles_n, wg_n)
        T = ctx.wgsl_type(a.dtype)
        # the kernel writes vec4 rows of 4 * N4 columns: straight into the output when that is N
        direct = splits == 1 and N == 4 * N4
        dst = out.buf if direct else ctx.temp(16 * splits * nbatch * M * N4, "padded-result")
        # the epilogue runs in the last pass: the matmul itself, or the split-K sum; a residual is
        # read in that pass's output layout (padded to 4 * N4 columns in the matmul's)
        ep_bufs = fused.bind(ctx, ep, 2, N, residual=_residual(ctx, ep, N if direct or splits > 1 else 4 * N4))
        epilogue = _epilogue_constants(ep)
        shape8, sa8, sb8 = vec8(shape), vec8(sa), vec8(sb)
        batch = {"rank": len(shape), "a_mat": M * K4, "b_mat": 4 * K4 * N4, "shape_lo": shape8[:4],
                 "shape_hi": shape8[4:], "a_lo": sa8[:4], "a_hi": sa8[4:], "b_lo": sb8[:4], "b_hi": sb8[4:]}
        template = {"T": T, "TC": T, **(precision.HALF_TEMPLATE if half else {}),
                    **(ep.template if splits == 1 else fused.template(None))}
        if not blocked:
            tiled.launch_matmul(ctx, variant, [mat_a, mat_b, dst, *ep_bufs], M, N, K4, N4, nbatch * splits,
                                splits, chunk, batch, ep.leaky_alpha, template, epilogue if splits == 1 else {})
        else:
            ctx.dispatch("matmul_subgroup.wgsl" if sub else "matmul.wgsl", [mat_a, mat_b, dst, *ep_bufs],
                         grid_1d(groups_m * groups_n * nbatch * splits, 1),
                         params={"M": M, "N": N, "K4": K4, "N4": N4, "tiles_m": tiles_m, "tiles_n": tiles_n,
                                 "groups_m": groups_m, "groups_n": groups_n, "nz": nbatch * splits,
                                 "splits": splits, "k4_chunk": chunk, "alpha": ep.leaky_alpha, **batch},
                         template={**template, "TM": tm},
                         constants={"WG_X": wg_x, "WG_Y": wg_y, **(epilogue if splits == 1 else {})})
        if splits > 1:
            ctx.dispatch("matmul_splitk.wgsl", [dst, out.buf, *ep_bufs], grid_1d(out.size),
                         params={"n": out.size, "M": M, "N": N, "Np": 4 * N4, "splits": splits,
                                 "alpha": ep.leaky_alpha},
                         template={"T": T, **ep.template}, constants=epilogue)
        elif not direct:
            _crop(ctx, dst, out.buf, nbatch, M, N, 4 * N4)
    return lower


def _epilogue_constants(ep) -> dict:
    """The override constants of a matmul kernel's fused epilogue (matmul_finish.wgsl): EPILOGUE
    false where there is nothing to apply (the sum is the result)."""
    return {**ep.constants, "EPILOGUE": bool(ep.bias is not None or ep.scale is not None or ep.activation
                                             or ep.residual_index is not None)}


def _gemv(ctx, ep, mat_a, w: np.ndarray, tb: bool, M: int, N: int, K4: int) -> None:
    """The node's [M, K] x [K, N] product by matmul_gemv_subgroup.wgsl (the matmul family's
    "subgroup_gemv" variant): ``mat_a`` the [M, 4*K4] operand (zero padded), ``w`` the weight
    ([N, K] when ``tb``), packed as [N, 4*K4] (K contiguous) once per model; straight into the
    output, the epilogue (and its residual, in the output's layout) in the same pass."""
    out = ctx.outputs[0]
    wt = w if tb else w.T
    packed = np.zeros((N, 4 * K4), np.float32)
    packed[:, :wt.shape[1]] = wt
    ep_bufs = fused.bind(ctx, ep, 2, N, residual=_residual(ctx, ep, N))
    epilogue = _epilogue_constants(ep)
    ctx.dispatch("matmul_gemv_subgroup.wgsl", [mat_a, ctx.constant(packed, F, "matmul-weight-t"), out.buf, *ep_bufs],
                 grid_1d(tiled.gemv_groups(N), 1),
                 params={"M": M, "N": N, "K4": K4, "alpha": ep.leaky_alpha},
                 template={"T": "f32", **ep.template}, constants=epilogue)


def _residual(ctx, ep, cols: int):
    """The residual input as [.., M, cols] (the output's rows, zero-padded columns): the input
    itself when it is that already, else one copy (broadcasting, padding); None without one."""
    if ep.residual_index is None:
        return None
    fused.residual_check(ep, ctx, 2)
    t, out = ctx.inputs[2 + ep.residual_index], ctx.outputs[0]
    shape = tuple(out.shape)
    if tuple(t.shape) == shape and cols == shape[-1]:
        return None
    buf = ctx.temp(4 * max(1, prod(shape[:-1]) * cols), "residual-padded")
    copy(ctx, t, buf, [*shape[:-1], cols], broadcast_strides(t.shape, shape), mode=PAD,
         lo=[0] * len(shape), ext=list(shape))
    return buf


def _mm_rows(name, attrs, ins, outs):
    return "transposes the batch" if attrs.get("transpose_a") else DATA(name, attrs, ins, outs)


def _bmm_rows(name, attrs, ins, outs):
    if rank(outs) >= 3 and same_rank(ins, outs):      # the batch is a batch dim of both operands
        return None
    return "transposes the batch" if attrs.get("adj_x") else DATA(name, attrs, ins, outs)


# --------------------------------------------------------------------------------------- cases
def _ints(shape, seed):
    return np.random.default_rng(seed).integers(-9, 10, size=shape).astype(np.int32)


_matmul_cases = [
    Case([quarters((3, 5), 1), quarters((5, 7), 2)], note="odd sizes: both operands repacked"),
    Case([quarters((8, 12), 3), quarters((12, 16), 4)], note="multiples of 4: no repacking"),
    Case([quarters((5, 3), 5), quarters((5, 7), 6)], attrs={"transpose_a": True}),
    Case([quarters((3, 5), 7), quarters((7, 5), 8)], attrs={"transpose_b": True}),
    Case([quarters((6, 9), 9), quarters((11, 6), 10)], attrs={"transpose_a": True, "transpose_b": True}),
    Case([quarters((1, 1), 11), quarters((1, 1), 12)], note="1x1x1"),
    Case([quarters((1, 64), 13), quarters((64, 10), 14)], note="matrix-vector (M=1)"),
    Case([quarters((33, 70), 15), quarters((70, 65), 16)], note="edge tiles in both directions"),
    Case([quarters((64, 132), 17), quarters((132, 72), 18)], note="several workgroups"),
    Case([quarters((2, 0), 19), quarters((0, 3), 20)], note="K=0: zeros"),
    Case([quarters((0, 4), 21), quarters((4, 3), 22)], note="M=0: empty"),
    Case([_ints((4, 6), 23), _ints((6, 5), 24)], note="int32"),
    Case([_ints((5, 3), 25), _ints((4, 5), 26)], attrs={"transpose_a": True, "transpose_b": True}, note="int32 transposed"),
    Case([quarters((2, 300001), 27, levels=4), quarters((3, 300001), 28, levels=4)], attrs={"transpose_b": True},
         note="K=300001 > llvmpipe's loop cap: split-K"),
    Case([quarters((130, 259), 29), quarters((259, 67), 30)],
         note="130x67x259: ragged edges of every tile size in M, N and K"),
    Case([quarters((259, 130), 31), quarters((67, 259), 32)], attrs={"transpose_a": True, "transpose_b": True},
         note="130x67x259, both transposed"),
]
register("MatMul", reference=_reference(_MM), shape=_shape(_MM, "none"),
         lower=_lower(_MM, "none"), dtypes=(F, I), cases=_matmul_cases, grad=_grad(_MM), rows=_mm_rows,
         texture_inputs=(1,))

_bmm_cases = [
    Case([quarters((2, 3, 4, 5), 1), quarters((2, 3, 5, 6), 2)]),
    Case([quarters((3, 5, 4), 3), quarters((3, 5, 6), 4)], attrs={"adj_x": True}),
    Case([quarters((3, 4, 5), 5), quarters((3, 6, 5), 6)], attrs={"adj_y": True}),
    Case([quarters((2, 5, 4), 7), quarters((2, 6, 5), 8)], attrs={"adj_x": True, "adj_y": True}),
    Case([quarters((1, 16, 8), 9), quarters((1, 8, 12), 10)], note="batch of 1, no repacking"),
    Case([_ints((2, 3, 4), 11), _ints((2, 4, 5), 12)], note="int32"),
]
register("BatchMatMul", reference=_reference(_BMM), shape=_shape(_BMM, "same"),
         lower=_lower(_BMM, "same"), dtypes=(F, I), cases=_bmm_cases, grad=_grad(_BMM), rows=_bmm_rows)
register("BatchMatMulV2", reference=_reference(_BMM), shape=_shape(_BMM, "broadcast"),
         lower=_lower(_BMM, "broadcast"), dtypes=(F, I), grad=_grad(_BMM), rows=_bmm_rows, cases=_bmm_cases + [
             Case([quarters((2, 1, 3, 5), 13), quarters((4, 5, 2), 14)], note="broadcast batch dims"),
             Case([quarters((3, 5), 15), quarters((2, 2, 5, 4), 16)], note="rank-2 x rank-4"),
             Case([quarters((2, 3, 4, 5), 17), quarters((1, 3, 6, 5), 18)], attrs={"adj_y": True}, note="broadcast + adj_y"),
             Case([quarters((3, 1, 2, 4, 3), 19), quarters((2, 1, 4, 2), 20)], attrs={"adj_x": True},
                  note="alternating broadcast dims"),
             Case([_ints((1, 2, 3), 21), _ints((4, 3, 2), 22)], note="int32 broadcast"),
             Case([quarters((3, 1, 70, 45), 23), quarters((2, 45, 90), 24)],
                  note="batch 3x2 (broadcast) of 70x90x45: ragged tiles"),
             Case([quarters((3, 1, 5, 203), 25), quarters((2, 203, 7), 26)],
                  note="batch 3x2 (broadcast) of 5x7 over K 203: the split-K forms' chunks per product"),
         ])


def _fused_cases():
    cases = []
    for i, ops in enumerate([["BiasAdd"], ["BiasAdd", "Relu"], ["BiasAdd", "Relu6"], ["BiasAdd", "Elu"],
                             ["BiasAdd", "LeakyRelu"], ["BiasAdd", "Sigmoid"], ["BiasAdd", "Tanh"],
                             ["BiasAdd", "Selu"]]):
        cases.append(Case([((5, 9), F), ((9, 7), F), ((7,), F)], attrs={"fused_ops": ops}, note="+".join(ops)))
    cases += [
        Case([((3, 8), F), ((8, 6), F), ((6,), F), ((6,), F)], attrs={"fused_ops": ["BiasAdd", "Prelu"]},
             note="BiasAdd+Prelu (alpha on the GPU)"),
        Case([((4, 10), F), ((10, 3), F), ((3,), F)],
             attrs={"fused_ops": ["BiasAdd", "LeakyRelu"], "leakyrelu_alpha": 0.05}, note="leakyrelu_alpha"),
        Case([((6, 4), F), ((5, 6), F), ((5,), F)],
             attrs={"fused_ops": ["BiasAdd", "Relu"], "transpose_a": True, "transpose_b": True}, note="transposed"),
        Case([quarters((2, 33001), 1, levels=4), quarters((33001, 5), 2, levels=4), quarters((5,), 3)],
             attrs={"fused_ops": ["BiasAdd", "Relu"]}, note="split-K: epilogue in the second pass"),
        Case([quarters((130, 259), 4), quarters((259, 67), 5), quarters((67,), 6)],
             attrs={"fused_ops": ["BiasAdd", "Relu"]}, note="130x67x259 + bias + Relu: ragged tiles"),
        # a residual (fused_ops "Add") added before the activation
        Case([((5, 9), F), ((9, 8), F), ((8,), F), ((5, 8), F)], attrs={"fused_ops": ["BiasAdd", "Add"]},
             note="BiasAdd+Add (written in place)"),
        Case([((5, 9), F), ((9, 7), F), ((7,), F), ((5, 7), F)], attrs={"fused_ops": ["BiasAdd", "Add", "Relu6"]},
             note="BiasAdd+Add+Relu6, 7 columns (padded residual)"),
        Case([((3, 8), F), ((8, 6), F), ((6,), F), ((1, 6), F), ((6,), F)],
             attrs={"fused_ops": ["BiasAdd", "Add", "Prelu"]}, note="BiasAdd+Add+Prelu, broadcast residual"),
        Case([quarters((2, 33001), 4, levels=4), quarters((33001, 5), 5, levels=4), quarters((5,), 6),
              quarters((2, 5), 7)], attrs={"fused_ops": ["BiasAdd", "Add", "Relu"]},
             note="split-K: the residual in the second pass"),
    ]
    return cases


register("_FusedMatMul", reference=_reference(_MM, with_epilogue=True),
         shape=_shape(_MM, "none"), lower=_lower(_MM, "none"), host_inputs=(2,), cases=_fused_cases(), rows=_mm_rows,
         texture_inputs=(1,),
         tol=(1e-5, "K <= 10 float32 products summed in another order than the float64 reference, "
                    "then exp/tanh in the epilogue (a few ULP)"))


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


def _einsum_operand(ctx, i, labels_order, own, st, summed):
    """Input ``i`` as a contiguous tensor of ``labels_order`` dims (its own sizes) with the
    ``summed`` labels (the trailing ones) summed away: the input itself when it already is."""
    x = ctx.inputs[i]
    sizes = [own[c] for c in labels_order]
    src_strides = [st[c] for c in labels_order]
    keep = len(labels_order) - len(summed)
    if not summed and src_strides == strides(sizes) and prod(sizes) == x.size:
        return x, tuple(sizes)
    tmp = ctx.temp(4 * max(1, prod(sizes)), f"operand{i}")
    copy(ctx, x, tmp, sizes, src_strides)
    if not summed:
        return tmp, tuple(sizes)
    red = ctx.temp(4 * max(1, prod(sizes[:keep])), f"operand{i}-summed")
    reduce_passes(ctx, tmp, tuple(sizes), tuple(range(keep, len(sizes))), "sum", x.dtype, red)
    return red, tuple(sizes[:keep])


def _einsum_lower(ctx):
    out = ctx.outputs[0]
    ops, out_labels, sizes = _einsum_spec(str(ctx.attrs.get("equation")), [t.shape for t in ctx.inputs])
    dst = ctx.device_output()
    if any(sizes[c] == 0 for labels, _, _ in ops for c in labels):      # an empty sum: zeros
        copy(ctx, dst, dst, (out.size,), (0,), mode=PAD, ext=(0,), fill=0)
        return
    if len(ops) == 1:
        labels, own, st = ops[0]
        summed = [c for c in labels if c not in out_labels]
        src, shape = _einsum_operand(ctx, 0, list(out_labels) + summed, own, st, summed)
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
    a, a_shape = _einsum_operand(ctx, 0, batch + a_free + contract + a_sum, own_a, st_a, a_sum)
    b, b_shape = _einsum_operand(ctx, 1, batch + contract + b_free + b_sum, own_b, st_b, b_sum)
    nb = len(batch)
    M, K, N = prod([sizes[c] for c in a_free]), prod([sizes[c] for c in contract]), prod([sizes[c] for c in b_free])
    a_mat = a_shape[:nb] + (M, K)
    b_mat = b_shape[:nb] + (K, N)
    mm_labels = batch + a_free + b_free
    mm_shape = tuple(sizes[c] for c in batch) + (M, N)
    direct = mm_labels == list(out_labels)
    mm_out = dst if direct else ctx.temp(4 * prod(mm_shape), "product")
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
    ins = [quarters(s, k + 1) if dtype == F else np.random.default_rng(k).integers(-3, 4, s).astype(np.int32)
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


# ---------------------------------------------------------------------------- MatrixBandPart
def _band_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    dst = ctx.device_output()
    lo, up = (int(np.reshape(ctx.value(k), -1)[0]) for k in (1, 2))
    ctx.dispatch("matrix_band_part.wgsl", [x, dst], grid_1d(out.size),
                 params={"n": out.size, "rows": x.shape[-2], "cols": x.shape[-1], "lower": lo, "upper": up},
                 template={"T": ctx.wgsl_type(x.dtype)})


def _band_ref(attrs, x, lo, up):
    lo, up = int(np.reshape(lo, -1)[0]), int(np.reshape(up, -1)[0])
    i, j = np.indices(x.shape[-2:])
    keep = ((lo < 0) | (i - j <= lo)) & ((up < 0) | (j - i <= up))
    return np.where(keep, x, np.zeros((), x.dtype))


register("MatrixBandPart", reference=_band_ref,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_band_lower, host_inputs=(1, 2),
         rows=from_rank(3, "works across rows"),
         dtypes=(F, I), cases=[Case([((2, 4, 5), F), np.array(1, np.int32), np.array(2, np.int32)]),
                               Case([((5, 3), I), np.array(-1, np.int32), np.array(0, np.int32)], note="lower triangle"),
                               Case([((3, 3), F), np.array(0, np.int32), np.array(-1, np.int32)], note="upper")])
