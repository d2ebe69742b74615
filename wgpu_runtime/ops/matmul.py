"""MatMul, _FusedMatMul, BatchMatMul, BatchMatMulV2: C = op(A) x op(B) over (broadcast) batch
dimensions, with the fused epilogue of _FusedMatMul ([BiasAdd, activation?]).

The kernel (kernels/matmul.wgsl) is register-blocked, TM rows x 4*TN4 columns per invocation,
reading A as vec4 along K and B as vec4 along N. Operands that are transposed or whose K / N are
not multiples of 4 are repacked first (on the host for weights, once per model; on the GPU
otherwise). K longer than K4_CHUNK vec4 steps is split into partial sums added by a second pass,
so no invocation loops more than llvmpipe's 65535 iterations."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fused
from .launch import grid_1d
from .registry import Case, register
from .shapes import broadcast, broadcast_strides, vec8

F, I = "float32", "int32"
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


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


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
    nbatch = int(np.prod(t.shape[:-2], dtype=np.int64))
    if t.value is not None:
        v = np.swapaxes(t.value, -1, -2) if transposed else t.value
        packed = np.zeros((nbatch, rows_p, cols_p), v.dtype)
        packed[:, :rows, :cols] = v.reshape(nbatch, rows, cols)
        return ctx.constant(packed, t.dtype, f"matmul-operand{i}")
    buf = ctx.temp(4 * nbatch * rows_p * cols_p, f"operand{i}")
    sr, sc = (1, rows) if transposed else (cols, 1)
    n = nbatch * rows_p * cols_p
    ctx.dispatch("matmul_pack.wgsl", [t, buf], grid_1d(n),
                 params=[n, rows, cols, rows_p, cols_p, rows * cols, sr, sc], template={"T": ctx.wgsl_type(t.dtype)})
    return buf


def _tiles(M: int, N4: int, nz: int) -> tuple[int, int, int]:
    """(TM, WG_X, WG_Y): up to 8 rows x 16 columns per invocation, and workgroups of 64
    invocations shaped to the tile grid -- smaller (down to 8) when that leaves fewer than 8
    workgroups, so that small products (M=1) still spread over the CPU threads of llvmpipe."""
    tm = min(8, _pow2(M))
    tiles_m, tiles_n = _cdiv(M, tm), _cdiv(N4, 4)
    wg_y = min(8, _pow2(tiles_m))
    wg_x = min(64 // wg_y, _pow2(tiles_n))
    wg_y = min(64 // wg_x, _pow2(tiles_m))
    while wg_x * wg_y > 8 and nz * _cdiv(tiles_m, wg_y) * _cdiv(tiles_n, wg_x) < 8:
        wg_x, wg_y = (wg_x // 2, wg_y) if wg_x >= wg_y else (wg_x, wg_y // 2)
    return tm, wg_x, wg_y


def _crop(ctx, src, dst, nbatch: int, M: int, N: int, Np: int) -> None:
    """dst [.., M, N] = the first N columns of src [.., M, Np]."""

    n = nbatch * M * N
    ctx.dispatch("matmul_pack.wgsl", [src, dst], grid_1d(n), params=[n, M, N, M, N, M * Np, Np, 1],
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
        if out.size == 0:
            return
        ep = fused.parse(ctx.attrs, [t.value for t in ctx.inputs[2:]], N, ctx.node.name)
        if a.dtype != F and (ep.bias is not None or ep.activation):
            raise TypeError(f"fused epilogues need float32, got {a.dtype}")
        K4, N4 = _cdiv(K, 4), _cdiv(N, 4)
        if K:
            mat_a = _operand(ctx, 0, M, K, d.ta, M, 4 * K4)
            mat_b = _operand(ctx, 1, K, N, d.tb, 4 * K4, 4 * N4)
        else:   # nothing to read, but a vec4 binding needs 16 bytes
            mat_a = mat_b = ctx.constant(np.zeros(4, np.float32), a.dtype, "empty-operand")
        shape, sa, sb = _batch_layout(d.batch, a.shape[:-2], b.shape[:-2])
        nbatch = int(np.prod(d.batch, dtype=np.int64))
        splits = max(1, _cdiv(K4, K4_CHUNK))
        tm, wg_x, wg_y = _tiles(M, N4, nbatch * splits)
        tiles_m, tiles_n = _cdiv(M, tm), _cdiv(N4, 4)
        groups_m, groups_n = _cdiv(tiles_m, wg_y), _cdiv(tiles_n, wg_x)
        ep_bufs = fused.bind(ctx, ep, 2, N)
        T = ctx.wgsl_type(a.dtype)
        # the kernel writes vec4 rows of 4 * N4 columns: straight into the output when that is N
        direct = splits == 1 and N == 4 * N4
        dst = out.buf if direct else ctx.temp(16 * splits * nbatch * M * N4, "padded-result")
        ctx.dispatch("matmul.wgsl", [mat_a, mat_b, dst, *ep_bufs],
                     grid_1d(groups_m * groups_n * nbatch * splits, 1),
                     params=[M, N, K4, N4, tiles_m, tiles_n, groups_m, groups_n, nbatch * splits, splits,
                             K4_CHUNK, ep.leaky_alpha, len(shape), M * K4, 4 * K4 * N4, 0,
                             *vec8(shape), *vec8(sa), *vec8(sb)],
                     template={"T": T, "TM": tm},
                     constants={"WG_X": wg_x, "WG_Y": wg_y, **(ep.constants if splits == 1 else {})})
        if splits > 1:
            ctx.dispatch("matmul_splitk.wgsl", [dst, out.buf, *ep_bufs], grid_1d(out.size),
                         params=[out.size, M, N, 4 * N4, splits, ep.leaky_alpha, 0, 0],
                         template={"T": T}, constants=ep.constants)
        elif not direct:
            _crop(ctx, dst, out.buf, nbatch, M, N, 4 * N4)
    return lower


# --------------------------------------------------------------------------------------- cases
def _q(shape, seed, levels=8):
    """Multiples of 1/4 in [-levels/4, levels/4]: every product and partial sum is exact in
    float32, so any summation order (GPU, numpy, TF) gives the same result."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-levels, levels + 1, size=shape) / 4).astype(np.float32)


def _ints(shape, seed):
    return np.random.default_rng(seed).integers(-9, 10, size=shape).astype(np.int32)


_matmul_cases = [
    Case([_q((3, 5), 1), _q((5, 7), 2)], note="odd sizes: both operands repacked"),
    Case([_q((8, 12), 3), _q((12, 16), 4)], note="multiples of 4: no repacking"),
    Case([_q((5, 3), 5), _q((5, 7), 6)], attrs={"transpose_a": True}),
    Case([_q((3, 5), 7), _q((7, 5), 8)], attrs={"transpose_b": True}),
    Case([_q((6, 9), 9), _q((11, 6), 10)], attrs={"transpose_a": True, "transpose_b": True}),
    Case([_q((1, 1), 11), _q((1, 1), 12)], note="1x1x1"),
    Case([_q((1, 64), 13), _q((64, 10), 14)], note="matrix-vector (M=1)"),
    Case([_q((33, 70), 15), _q((70, 65), 16)], note="edge tiles in both directions"),
    Case([_q((64, 132), 17), _q((132, 72), 18)], note="several workgroups"),
    Case([_q((2, 0), 19), _q((0, 3), 20)], note="K=0: zeros"),
    Case([_q((0, 4), 21), _q((4, 3), 22)], note="M=0: empty"),
    Case([_ints((4, 6), 23), _ints((6, 5), 24)], note="int32"),
    Case([_ints((5, 3), 25), _ints((4, 5), 26)], attrs={"transpose_a": True, "transpose_b": True}, note="int32 transposed"),
    Case([_q((2, 300001), 27, levels=4), _q((3, 300001), 28, levels=4)], attrs={"transpose_b": True},
         note="K=300001 > llvmpipe's loop cap: split-K"),
]
register("MatMul", reference=_reference(_MM), shape=_shape(_MM, "none"),
         lower=_lower(_MM, "none"), dtypes=(F, I), cases=_matmul_cases, grad=_grad(_MM))

_bmm_cases = [
    Case([_q((2, 3, 4, 5), 1), _q((2, 3, 5, 6), 2)]),
    Case([_q((3, 5, 4), 3), _q((3, 5, 6), 4)], attrs={"adj_x": True}),
    Case([_q((3, 4, 5), 5), _q((3, 6, 5), 6)], attrs={"adj_y": True}),
    Case([_q((2, 5, 4), 7), _q((2, 6, 5), 8)], attrs={"adj_x": True, "adj_y": True}),
    Case([_q((1, 16, 8), 9), _q((1, 8, 12), 10)], note="batch of 1, no repacking"),
    Case([_ints((2, 3, 4), 11), _ints((2, 4, 5), 12)], note="int32"),
]
register("BatchMatMul", reference=_reference(_BMM), shape=_shape(_BMM, "same"),
         lower=_lower(_BMM, "same"), dtypes=(F, I), cases=_bmm_cases, grad=_grad(_BMM))
register("BatchMatMulV2", reference=_reference(_BMM), shape=_shape(_BMM, "broadcast"),
         lower=_lower(_BMM, "broadcast"), dtypes=(F, I), grad=_grad(_BMM), cases=_bmm_cases + [
             Case([_q((2, 1, 3, 5), 13), _q((4, 5, 2), 14)], note="broadcast batch dims"),
             Case([_q((3, 5), 15), _q((2, 2, 5, 4), 16)], note="rank-2 x rank-4"),
             Case([_q((2, 3, 4, 5), 17), _q((1, 3, 6, 5), 18)], attrs={"adj_y": True}, note="broadcast + adj_y"),
             Case([_q((3, 1, 2, 4, 3), 19), _q((2, 1, 4, 2), 20)], attrs={"adj_x": True},
                  note="alternating broadcast dims"),
             Case([_ints((1, 2, 3), 21), _ints((4, 3, 2), 22)], note="int32 broadcast"),
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
        Case([_q((2, 33001), 1, levels=4), _q((33001, 5), 2, levels=4), _q((5,), 3)],
             attrs={"fused_ops": ["BiasAdd", "Relu"]}, note="split-K: epilogue in the second pass"),
    ]
    return cases


register("_FusedMatMul", reference=_reference(_MM, with_epilogue=True),
         shape=_shape(_MM, "none"), lower=_lower(_MM, "none"), host_inputs=(2,), cases=_fused_cases(),
         tol=(1e-5, "K <= 10 float32 products summed in another order than the float64 reference, "
                    "then exp/tanh in the epilogue (a few ULP)"))
