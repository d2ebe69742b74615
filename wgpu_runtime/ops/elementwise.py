"""Element-wise ops: unary math and activations, broadcasting binary ops, comparisons, logic,
Select, Cast, AddN, IsNan / IsInf / IsFinite, ClipByValue and FakeQuantWithMinMaxVars. Each op is
a row: name, numpy reference, WGSL expression per dtype."""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import device_dtype, numpy_dtype
from . import tiled
from .common import B, F, I, quarters, same_shape
from .launch import grid_1d
from .registry import Case, Tensor, register
from .rows import per_element
from .shapes import broadcast, broadcast_strides, strides

f32 = np.float32


NAN = np.float32(np.nan)


def is_nan_wgsl(v: str) -> str:
    """WGSL: whether the f32 ``v`` is NaN, tested on its bits (compilers may assume no NaN in
    float comparisons, and max / min / clamp may drop a NaN on some adapters)."""
    return f"((bitcast<u32>({v}) & 0x7fffffffu) > 0x7f800000u)"


MAX_F = f"select(max(a, b), a + b, {is_nan_wgsl('a')} || {is_nan_wgsl('b')})"    # NaN if either is, as TF
MIN_F = f"select(min(a, b), a + b, {is_nan_wgsl('a')} || {is_nan_wgsl('b')})"


def _as_chain(ctx, args: list[str], attrs: dict) -> bool:
    """Where texture kernels come first (llvmpipe), a big float32 element-wise op runs as a
    one-step _FusedElementwise, which reads its inputs from texture copies instead of loading
    storage buffers lane by lane (elementwise_chain.py); True when it did."""
    from .elementwise_chain import TEXTURE_MIN_ELEMENTS, chainable     # (that module imports this one)

    ins, op = ctx.inputs, ctx.node.op
    if (not tiled.texture_first(ctx.device) or not chainable(op) or ctx.outputs[0].dtype != F
            or any(t.dtype != F for t in ins) or max(t.size for t in ins) < TEXTURE_MIN_ELEMENTS):
        return False
    ctx.lower_op("_FusedElementwise", list(ins), attrs={"steps": [[op, attrs, args]]}, as_node=True)
    return True


# ---------------------------------------------------------------------------------- unary
def _lower_unary(exprs, alpha_attr=None, alpha_default=0.0, out_dtype=None):
    def lower(ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        expr = exprs.get(x.dtype)
        if expr is None:
            raise TypeError(f"{ctx.node.op} does not support {x.dtype}")
        if x.dtype == F and y.dtype == F:           # NaN in, NaN out, as every TF float math op
            expr = f"select({expr}, x, {is_nan_wgsl('x')})"
        a = ctx.attrs.get(alpha_attr) if alpha_attr else None
        alpha = float(alpha_default if a is None else a)
        if _as_chain(ctx, ["i0"], {"alpha": alpha}):
            return
        ctx.dispatch("unary.wgsl", [x, ctx.device_output()], grid_1d(y.size),
                     params={"n": y.size, "alpha": alpha, "beta": 0.0},
                     template={"T_IN": ctx.wgsl_type(x.dtype), "T_OUT": ctx.wgsl_type(y.dtype), "EXPR": expr})
    return lower


def _unary_cases(low, high, dtypes):
    cases = [Case([((17,), dtypes[0])], note="odd length", low=low, high=high),
             Case([((2, 3, 5, 7), dtypes[0])], low=low, high=high),
             Case([((), dtypes[0])], note="scalar", low=low, high=high),
             Case([((0, 3), dtypes[0])], note="empty", low=low, high=high)]
    cases += [Case([((4, 9), d)], note=d, low=low, high=high) for d in dtypes[1:]]
    if dtypes[0] == F:
        inside = [low + (high - low) * t for t in (0.2, 0.5, 0.8)]
        cases.append(Case([np.array([NAN, inside[0], NAN, inside[1], inside[2], NAN], np.float32)],
                          note="NaN in, NaN out (TF)"))
    return cases


def unary(name, ref, exprs, low=-3.0, high=3.0, alpha=None, tol=None, extra_cases=(), grad=None):
    alpha_attr, alpha_default = alpha or (None, 0.0)
    dtypes = tuple(exprs)

    def reference(attrs, x):
        a = attrs.get(alpha_attr) if alpha_attr else None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # IEEE results (inf, NaN) are
            out = ref(x, alpha_default if a is None else a) if alpha_attr else ref(x)   # the answer, not news
        return np.asarray(out).astype(x.dtype, copy=False)

    register(name, reference=reference, shape=same_shape, wgsl=dict(exprs),
             lower=_lower_unary(exprs, alpha_attr, alpha_default), dtypes=dtypes, tol=tol,
             cases=_unary_cases(low, high, dtypes) + list(extra_cases), grad=_unary_grad(grad), rows=per_element)


_erf = np.vectorize(math.erf, otypes=[np.float64])


# ------------------------------------------------------------------------- gradient rules
# grad(attrs, inputs, outputs, dys) -> one gradient per input (see wgpu_runtime/autograd).
def unbroadcast(g: np.ndarray, shape) -> np.ndarray:
    """Sum ``g`` (of a broadcast result's shape) down to an operand's ``shape``."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    keep = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return (g.sum(axis=keep, keepdims=True) if keep else g).reshape(shape)


def _unary_grad(rule):
    """rule(attrs, x, y, dy) -> dx, as a registry grad rule (float inputs only)."""
    if rule is None:
        return None

    def grad(attrs, ins, outs, dys):
        x = ins[0]
        if x.dtype.kind != "f":
            return [None]
        return [np.asarray(rule(attrs, x, outs[0], dys[0])).astype(x.dtype, copy=False)]
    return grad


def _zero_grad(attrs, x, y, dy):
    return np.zeros_like(x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _leaky_grad(attrs, x, y, dy):   # TF's LeakyReluGrad: alpha where x <= 0
    a = attrs.get("alpha")
    return np.where(x > 0, dy, dy * np.float32(0.2 if a is None else a))


SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805

unary("Neg", np.negative, {F: "-x", I: "-x"},
      grad=lambda at, x, y, dy: -dy)
unary("Abs", np.abs, {F: "abs(x)", I: "abs(x)"},
      grad=lambda at, x, y, dy: dy * np.sign(x))
unary("Square", np.square, {F: "x * x", I: "x * x"},
      grad=lambda at, x, y, dy: dy * 2 * x)
unary("Sign", np.sign, {F: "sign(x)", I: "sign(x)"},
      grad=_zero_grad)
unary("Exp", np.exp, {F: "exp(x)"}, tol=(2e-6, "exp is accurate to ~2 ULP in WGSL backends"),
      grad=lambda at, x, y, dy: dy * y)
unary("Log", np.log, {F: "log(x)"}, low=0.01, high=10.0, tol=(3e-6, "log within a few ULP"),
      grad=lambda at, x, y, dy: dy / x)
unary("Sqrt", np.sqrt, {F: "sqrt(x)"}, low=0.0, high=10.0,
      grad=lambda at, x, y, dy: dy * 0.5 / y)
unary("Rsqrt", lambda x: 1 / np.sqrt(x), {F: "inverseSqrt(x)"}, low=0.01, high=10.0,
      tol=(1e-5, "inverseSqrt is allowed 2 ULP by WGSL"),
      grad=lambda at, x, y, dy: dy * -0.5 * y * y * y)
unary("Reciprocal", lambda x: 1 / x, {F: "1.0 / x"}, low=0.1, high=10.0,
      grad=lambda at, x, y, dy: -dy * y * y)
unary("Floor", np.floor, {F: "floor(x)"},
      grad=_zero_grad)
unary("Ceil", np.ceil, {F: "ceil(x)"},
      grad=_zero_grad)
unary("Round", np.round, {F: "round(x)"},
      extra_cases=[Case([np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5], np.float32)], note="ties to even")],
      grad=_zero_grad)
unary("Sin", np.sin, {F: "sin(x)"}, tol=(1e-5, "sin/cos accuracy of GPU built-ins on |x|<3"),
      grad=lambda at, x, y, dy: dy * np.cos(x))
unary("Cos", np.cos, {F: "cos(x)"}, tol=(1e-5, "sin/cos accuracy of GPU built-ins on |x|<3"),
      grad=lambda at, x, y, dy: -dy * np.sin(x))
unary("Relu", lambda x: np.maximum(x, 0), {F: "max(x, 0.0)", I: "max(x, 0)"},
      grad=lambda at, x, y, dy: dy * (x > 0))
unary("Relu6", lambda x: np.clip(x, 0, 6), {F: "clamp(x, 0.0, 6.0)", I: "clamp(x, 0, 6)"}, low=-3, high=9,
      grad=lambda at, x, y, dy: dy * ((x > 0) & (x < 6)))
unary("Elu", lambda x: np.where(x > 0, x, np.expm1(x)), {F: "select(exp(x) - 1.0, x, x > 0.0)"},
      tol=(1e-5, "exp(x)-1 vs expm1 near 0 differs by ~1e-7 absolute"),
      grad=lambda at, x, y, dy: np.where(x > 0, dy, dy * (y + 1)))
unary("Selu", lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)),
      {F: f"{SELU_S} * select({SELU_A} * (exp(x) - 1.0), x, x > 0.0)"},
      tol=(1e-5, "exp(x)-1 vs expm1 near 0 differs by ~1e-7 absolute"),
      grad=lambda at, x, y, dy: np.where(x > 0, dy * SELU_S, dy * (y + SELU_S * SELU_A)))
unary("LeakyRelu", lambda x, a: np.where(x >= 0, x, x * np.float32(a)), {F: "select(x * p.alpha, x, x >= 0.0)"},
      alpha=("alpha", 0.2), extra_cases=[Case([((3, 5), F)], attrs={"alpha": 0.01})],
      grad=_leaky_grad)
unary("Sigmoid", lambda x: 1 / (1 + np.exp(-x)), {F: "1.0 / (1.0 + exp(-x))"}, low=-20, high=20,
      grad=lambda at, x, y, dy: dy * y * (1 - y))
unary("Tanh", np.tanh, {F: "tanh_f32(x)"}, low=-20, high=20,
      tol=(2e-6, "tanh through exp: a few ULP"),
      grad=lambda at, x, y, dy: dy * (1 - y * y))
unary("Softplus", lambda x: np.logaddexp(0, x), {F: "max(x, 0.0) + log(1.0 + exp(-abs(x)))"}, low=-20, high=20,
      tol=(2e-6, "log(1+exp(-|x|)) vs log1p: ~1e-7 absolute"),
      grad=lambda at, x, y, dy: dy * _sigmoid(x))
unary("Erf", _erf, {F: "erf_f32(x)"}, tol=(3e-7, "A&S 7.1.26 polynomial, |error| <= 1.5e-7 (absolute)"),
      grad=lambda at, x, y, dy: dy * (2 / np.sqrt(np.pi)) * np.exp(-np.square(x)))
unary("LogicalNot", np.logical_not, {B: "u32(x == 0u)"})


# ------------------------------------------------------------------------------------ Cast
def _cast_ref(attrs, x):
    dst = attrs.get("DstT") or F
    return x != 0 if dst == B else x.astype(numpy_dtype(device_dtype(dst)))


def _cast_shape(attrs, ins):
    return [(ins[0].shape, device_dtype(attrs.get("DstT") or F))]


_CAST = {(F, I): "i32(x)", (I, F): "f32(x)", (B, F): "f32(x)", (B, I): "i32(x)",
         (F, B): "u32(x != 0.0)", (I, B): "u32(x != 0)"}


def _cast_lower(ctx):
    x, y = ctx.inputs[0], ctx.outputs[0]
    if x.dtype == y.dtype:
        ctx.alias()
        return
    expr = _CAST[(x.dtype, y.dtype)]
    ctx.dispatch("unary.wgsl", [x, ctx.device_output()], grid_1d(y.size),
                 params={"n": y.size, "alpha": 0.0, "beta": 0.0},
                 template={"T_IN": ctx.wgsl_type(x.dtype), "T_OUT": ctx.wgsl_type(y.dtype), "EXPR": expr})


def _cast_grad(attrs, ins, outs, dys):   # float -> float only (a value, not an index)
    return [dys[0].astype(ins[0].dtype) if ins[0].dtype.kind == "f" and outs[0].dtype.kind == "f" else None]


register("Cast", reference=_cast_ref, shape=_cast_shape, lower=_cast_lower,
         dtypes=(F, I, B), grad=_cast_grad, rows=per_element,
         cases=[Case([((3, 7), F)], attrs={"SrcT": F, "DstT": I}, low=-9, high=9, note="truncates toward 0"),
                Case([((3, 7), I)], attrs={"SrcT": I, "DstT": F}, low=-9, high=9),
                Case([((11,), B)], attrs={"SrcT": B, "DstT": F}),
                Case([((11,), I)], attrs={"SrcT": I, "DstT": B}, low=-2, high=2)])


# ---------------------------------------------------------------------------------- binary
def _binary_shape(out_dtype=None):
    def shape(attrs, ins):
        return [(broadcast(ins[0].shape, ins[1].shape), out_dtype or ins[0].dtype)]
    return shape


def _broadcast_dims(out_shape, *shapes) -> list[tuple[int, ...]]:
    """The output's dims as rows (extent, stride of each operand; 0 along broadcast dims), size-1
    dims dropped and each dim merged into the one outside it where every operand crosses the two
    contiguously: fewer dims, less index math per element. At least one row."""
    cols = [broadcast_strides(s, out_shape) for s in shapes]
    rows: list[tuple[int, ...]] = []
    for k, size in enumerate(out_shape):
        if size == 1:
            continue
        row = (int(size), *(int(c[k]) for c in cols))
        if rows and all(outer == inner * size for outer, inner in zip(rows[-1][1:], row[1:])):
            rows[-1] = (rows[-1][0] * size, *row[1:])
        else:
            rows.append(row)
    return rows or [(1,) + (0,) * len(shapes)]


def _dims(rows, fields) -> list[dict]:
    """Rows as the kernels' ``array<Dim, 8>`` uniform: one ``Dim`` (``fields``) per row."""
    if len(rows) > 8:
        raise ValueError(f"broadcasting over {len(rows)} dims: at most 8 are supported")
    return [dict(zip(fields, r, strict=True)) for r in rows]


def _index_mode(rows, k: int) -> int:
    """binary.wgsl's A_MODE/B_MODE for operand ``k`` (column k + 1 of ``rows``)."""
    st = [r[k + 1] for r in rows]
    if not any(st):
        return 1
    if st == strides([r[0] for r in rows]):
        return 0
    if len(st) > 1 and st[-1] == 1 and not any(st[:-1]):
        return 3
    return 2


def lower_binary(ctx, expr: str, a, b, out) -> None:
    """Launch binary.wgsl computing ``expr`` over tensors a, b into tensor out (broadcasting)."""
    rows = _broadcast_dims(out.shape, a.shape, b.shape)
    ctx.dispatch("binary.wgsl", [a, b, out.buf], grid_1d(out.size),
                 params={"n": out.size, "rank": len(rows), "inner": rows[-1][0],
                         "dims": _dims(rows, ("size", "a", "b"))},
                 template={"T_A": ctx.wgsl_type(a.dtype), "T_B": ctx.wgsl_type(b.dtype),
                           "T_OUT": ctx.wgsl_type(out.dtype), "EXPR": expr},
                 constants={"A_MODE": _index_mode(rows, 0), "B_MODE": _index_mode(rows, 1)})


def _lower_binary(exprs):
    def lower(ctx):
        a, b = ctx.inputs
        expr = exprs.get(a.dtype)
        if expr is None:
            raise TypeError(f"{ctx.node.op} does not support {a.dtype}")
        if _as_chain(ctx, ["i0", "i1"], {}):
            return
        ctx.device_output()
        lower_binary(ctx, expr, a, b, ctx.outputs[0])
    return lower


_SHAPES = [((2, 3, 5), (2, 3, 5)), ((4, 1, 7), (1, 6, 1)), ((), (3, 4)), ((5,), (3, 1, 5)),
           ((1,), (1,)), ((2, 1, 1, 3, 1, 2), (1, 4, 1, 1, 5, 1)), ((0, 3), (1, 3)), ((2, 3, 4), (1, 4))]


def _binary_grad(rule):
    """rule(a, b, y, dy) -> (da, db) of the broadcast shape; summed back to each operand's shape."""
    if rule is None:
        return None

    def grad(attrs, ins, outs, dys):
        a, b = ins
        if a.dtype.kind != "f":
            return [None, None]
        da, db = rule(a, b, outs[0], dys[0])
        return [None if g is None else unbroadcast(np.asarray(g, a.dtype), x.shape) for g, x in ((da, a), (db, b))]
    return grad


def binary(name, ref, exprs, out=None, low=-3.0, high=3.0, b_range=None, tol=None, extra_cases=(), grad=None):
    dtypes = tuple(exprs)

    def reference(attrs, a, b):
        r = np.asarray(ref(a, b))
        return r.astype(numpy_dtype(out) if out else a.dtype, copy=False)

    cases = []
    for d in dtypes:
        lo, hi = (low, high) if d != B else (0, 2)
        for sa, sb in (_SHAPES if d == dtypes[0] else _SHAPES[:2]):
            cases.append(Case([(sa, d), (sb, d)], low=lo, high=hi, note=f"{d} {sa}x{sb}"))
    if b_range:
        for c in cases:
            c.inputs = [c.inputs[0], (*c.inputs[1], *b_range)]
    register(name, reference=reference, shape=_binary_shape(out), wgsl=dict(exprs),
             lower=_lower_binary(exprs), dtypes=dtypes, tol=tol, cases=cases + list(extra_cases),
             grad=_binary_grad(grad), rows=per_element)


def _floordiv(a, b):
    return np.floor_divide(a, b)


def _div_grad(a, b, y, dy):
    return dy / b, -dy * a / (b * b)


def _pow_grad(a, b, y, dy):   # TF: d/db is 0 where a <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        da = dy * b * np.power(a, b - 1)
        db = np.where(a > 0, dy * y * np.log(np.where(a > 0, a, 1)), 0)
    return da, db


binary("AddV2", np.add, {F: "a + b", I: "a + b"}, grad=lambda a, b, y, dy: (dy, dy))
binary("Add", np.add, {F: "a + b", I: "a + b"}, grad=lambda a, b, y, dy: (dy, dy))
binary("Sub", np.subtract, {F: "a - b", I: "a - b"}, grad=lambda a, b, y, dy: (dy, -dy))
binary("Mul", np.multiply, {F: "a * b", I: "a * b"}, grad=lambda a, b, y, dy: (dy * b, dy * a))
binary("RealDiv", np.divide, {F: "a / b"}, b_range=(0.5, 3.0), tol=(2e-6, "WGSL f32 division is 2.5 ULP"),
       grad=_div_grad)
binary("Div", lambda a, b: np.divide(a, b) if a.dtype.kind == "f" else np.trunc(a / b).astype(a.dtype),
       {F: "a / b", I: "a / b"}, b_range=(1, 5), tol=(2e-6, "WGSL f32 division is 2.5 ULP"), grad=_div_grad)
binary("DivNoNan", lambda a, b: np.where(b == 0, 0, a / np.where(b == 0, 1, b)),
       {F: "select(a / b, 0.0, b == 0.0)"}, tol=(2e-6, "WGSL f32 division is 2.5 ULP"))
_NAN_PAIRS = [Case([np.array([NAN, 1, NAN, -2, np.inf, 0], np.float32), np.array([0, NAN, NAN, 3, NAN, -np.inf], np.float32)],
                   note="NaN in either operand: NaN (TF)")]
binary("Maximum", np.maximum, {F: MAX_F, I: "max(a, b)"},      # ties go to a, as TF
       grad=lambda a, b, y, dy: (dy * (a >= b), dy * (a < b)), extra_cases=_NAN_PAIRS)
binary("Minimum", np.minimum, {F: MIN_F, I: "min(a, b)"},
       grad=lambda a, b, y, dy: (dy * (a <= b), dy * (a > b)), extra_cases=_NAN_PAIRS)
binary("SquaredDifference", lambda a, b: np.square(a - b), {F: "(a - b) * (a - b)", I: "(a - b) * (a - b)"},
       grad=lambda a, b, y, dy: (2 * (a - b) * dy, -2 * (a - b) * dy))
binary("Pow", np.power, {F: "pow_f32(a, b)", I: "pow_i32(a, b)"}, low=0.1, high=3.0,
       tol=(1e-5, "pow = exp2(b*log2(a)) on GPUs: error grows with |b*log2(a)|"),
       extra_cases=[Case([np.array([-2.0, -3.0, -1.5, 2.0], np.float32), np.array([2.0, 3.0, 2.0, 0.5], np.float32)],
                         note="negative base, integral exponent")], grad=_pow_grad)
binary("FloorDiv", _floordiv, {F: "floor(a / b)", I: "floordiv_i32(a, b)"}, b_range=(1.0, 3.0),
       extra_cases=[Case([np.array([-7, 7, -7, 7, 0], np.int32), np.array([2, -2, -2, 2, 3], np.int32)],
                         note="signs")])
binary("FloorMod", np.mod, {F: "floormod_f32(a, b)", I: "floormod_i32(a, b)"}, b_range=(1.0, 3.0),
       tol=(1e-5, "fmod of float32 near multiples: one rounding of a/b"),
       extra_cases=[Case([np.array([-7, 7, -7, 7, 0], np.int32), np.array([2, -2, -2, 2, 3], np.int32)],
                         note="signs")])
binary("Prelu", lambda x, a: np.where(x >= 0, x, x * a), {F: "select(a * b, a, a >= 0.0)"},
       grad=lambda x, a, y, dy: (np.where(x >= 0, dy, dy * a), np.where(x >= 0, 0, dy * x)))
binary("Atan2", np.arctan2, {F: "atan2(a, b)"},
       tol=(1e-5, "WGSL allows atan2 4096 ULP; llvmpipe measured ~35 ULP (2e-6 at 0.8)"))

for _name, _fn, _sym in [("Greater", np.greater, ">"), ("GreaterEqual", np.greater_equal, ">="),
                         ("Less", np.less, "<"), ("LessEqual", np.less_equal, "<="),
                         ("Equal", np.equal, "=="), ("NotEqual", np.not_equal, "!=")]:
    binary(_name, _fn, {F: f"u32(a {_sym} b)", I: f"u32(a {_sym} b)"}, out=B, low=-2, high=2)
binary("LogicalAnd", np.logical_and, {B: "u32((a != 0u) && (b != 0u))"}, out=B)
binary("LogicalOr", np.logical_or, {B: "u32((a != 0u) || (b != 0u))"}, out=B)


# ---------------------------------------------------------------------------------- Select
def _select_cond_shape(cs: tuple, ts: tuple) -> tuple:
    """Select's condition shape as broadcast: a vector condition as long as a higher-rank ``t``'s
    first dimension picks whole rows (TF's Select), so it gets trailing 1s."""
    if len(cs) == 1 and len(ts) > 1 and cs[0] == ts[0]:
        return cs + (1,) * (len(ts) - 1)
    return cs


def _select_ref(attrs, c, t, e):
    return np.where(c.reshape(_select_cond_shape(c.shape, t.shape)), t, e).astype(t.dtype)


def _select_shape(attrs, ins):
    c, t, e = ins
    return [(broadcast(_select_cond_shape(c.shape, t.shape), t.shape, e.shape), t.dtype)]


def _select_lower(ctx):
    c, t, e = ctx.inputs
    out = ctx.outputs[0]
    ctx.device_output()
    rows = _broadcast_dims(out.shape, _select_cond_shape(c.shape, t.shape), t.shape, e.shape)
    ctx.dispatch("select.wgsl", [c, t, e, out.buf], grid_1d(out.size),
                 params={"n": out.size, "rank": len(rows), "dims": _dims(rows, ("size", "c", "t", "e"))},
                 template={"T": ctx.wgsl_type(t.dtype)})


_sel_cases = [Case([((3, 4), B), ((3, 4), F), ((3, 4), F)]),
              Case([((4,), B), ((2, 3, 4), F), ((1, 4), F)], note="broadcast"),
              Case([((5,), B), ((5,), I), ((5,), I)], note="int32")]
def _select_grad(attrs, ins, outs, dys):
    c, t, e = ins
    if t.dtype.kind != "f":
        return [None, None, None]
    c = c.reshape(_select_cond_shape(c.shape, t.shape))
    dy = dys[0]
    zero = np.zeros((), dy.dtype)
    return [None, unbroadcast(np.where(c, dy, zero), t.shape), unbroadcast(np.where(c, zero, dy), e.shape)]


register("SelectV2", reference=_select_ref, shape=_select_shape, lower=_select_lower,
         dtypes=(F, I, B), cases=_sel_cases, grad=_select_grad, rows=per_element)
register("Select", reference=_select_ref, shape=_select_shape, lower=_select_lower,
         dtypes=(F, I, B), grad=_select_grad, rows=per_element, cases=[Case([((3,), B), ((3, 4), F), ((3, 4), F)], note="v1 row select"),
                                     Case([((3, 4), B), ((3, 4), F), ((3, 4), F)])])


# ------------------------------------------------------------------------------------ AddN
def _addn_lower(ctx):
    out = ctx.outputs[0]
    ins = ctx.inputs
    if len(ins) == 1:
        ctx.alias()
        return
    acc = ins[0]
    for i, t in enumerate(ins[1:]):
        last = i == len(ins) - 2
        dst = out if last else Tensor(out.shape, out.dtype, buf=ctx.temp(4 * out.size, f"sum{i}"))
        if last:
            ctx.device_output()
        lower_binary(ctx, "a + b", acc, t, dst)
        acc = dst


register("AddN", reference=lambda attrs, *xs: np.sum(xs, axis=0).astype(xs[0].dtype),
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_addn_lower, dtypes=(F, I), rows=per_element,
         grad=lambda attrs, ins, outs, dys: [dys[0] if x.dtype.kind == "f" else None for x in ins],
         cases=[Case([((3, 5), F)] * 3, tf_inputs=[[0, 1, 2]]), Case([((7,), I)] * 2, tf_inputs=[[0, 1]])])


# ---------------------------------------------------- more unary math, Mod, BitwiseAnd, checks
# llvmpipe's acos/asin are good to ~1e-4 only: through atan2 instead (~35 ULP measured)
_ATAN2_TOL = (1e-5, "WGSL allows atan2 4096 ULP; llvmpipe measured ~35 ULP (as Atan2)")
unary("Acos", np.arccos, {F: "atan2(sqrt((1.0 - x) * (1.0 + x)), x)"}, low=-1.0, high=1.0, tol=_ATAN2_TOL)
unary("Asin", np.arcsin, {F: "atan2(x, sqrt((1.0 - x) * (1.0 + x)))"}, low=-1.0, high=1.0, tol=_ATAN2_TOL)
unary("Atan", np.arctan, {F: "atan(x)"}, low=-10.0, high=10.0, tol=(2e-6, "atan within a few ULP"))
unary("Tan", np.tan, {F: "tan(x)"}, low=-1.3, high=1.3, tol=(1e-5, "tan = sin/cos: a few ULP, more near pi/2"))
unary("Sinh", np.sinh, {F: "0.5 * (exp(x) - exp(-x))"}, low=-5.0, high=5.0,
      tol=(2e-6, "through exp: ~2 ULP of max(1, |y|)"))
unary("Cosh", np.cosh, {F: "0.5 * (exp(x) + exp(-x))"}, low=-5.0, high=5.0,
      tol=(2e-6, "through exp: ~2 ULP of max(1, |y|)"))
# Kahan's forms: exact near 0 where exp(x) - 1 and log(1 + x) cancel
unary("Expm1", np.expm1, {F: "select(select((exp(x) - 1.0) * x / log(exp(x)), x, exp(x) == 1.0), "
                             "exp(x) - 1.0, abs(x) > 0.5)"},
      tol=(2e-6, "Kahan's expm1 through exp/log: a few ULP"),
      extra_cases=[Case([np.array([1e-8, -3e-6, 2e-4, -0.01, 0.3, 20.0], np.float32)], note="tiny arguments")])
unary("Log1p", np.log1p, {F: "select(select(log(1.0 + x) * x / ((1.0 + x) - 1.0), x, 1.0 + x == 1.0), "
                             "log(1.0 + x), abs(x) > 0.5)"}, low=-0.9, high=5.0,
      tol=(2e-6, "Kahan's log1p through log: a few ULP"),
      extra_cases=[Case([np.array([1e-8, -3e-6, 2e-4, -0.01, 0.3, 20.0], np.float32)], note="tiny arguments")])
unary("Asinh", np.arcsinh, {F: "sign(x) * log(abs(x) + sqrt(x * x + 1.0))"}, low=-5.0, high=5.0,
      tol=(2e-6, "through log/sqrt: a few ULP of max(1, |y|)"))
unary("Acosh", np.arccosh, {F: "log(x + sqrt(x * x - 1.0))"}, low=1.0, high=8.0,
      tol=(2e-6, "through log/sqrt: a few ULP of max(1, |y|)"))
unary("Atanh", np.arctanh, {F: "0.5 * log((1.0 + x) / (1.0 - x))"}, low=-0.95, high=0.95,
      tol=(2e-6, "through log: a few ULP of max(1, |y|)"))

_SPECIAL = np.array([0.0, -1.5, np.nan, np.inf, -np.inf, 3e38, -0.0, 1e-40], np.float32)
for _name, _fn, _expr in (
        ("IsNan", np.isnan, "u32((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u)"),
        ("IsInf", np.isinf, "u32((bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u)"),
        ("IsFinite", np.isfinite, "u32((bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u)")):
    # on the bits: WGSL compilers may assume no NaN/inf in float comparisons
    register(_name, reference=lambda attrs, x, fn=_fn: fn(x),
             shape=lambda attrs, ins: [(ins[0].shape, B)], lower=_lower_unary({F: _expr}), dtypes=(F,), rows=per_element,
             cases=[Case([_SPECIAL]), Case([((3, 4), F)]), Case([((0,), F)], note="empty")])

binary("Mod", np.fmod, {F: "a - b * trunc(a / b)",
                        I: "select(-i32(u32(abs(a)) % u32(abs(b))), i32(u32(abs(a)) % u32(abs(b))), a >= 0)"},
       b_range=(1.0, 3.0), tol=(1e-5, "fmod through one rounded division"),
       extra_cases=[Case([np.array([-7, 7, -7, 7, 0], np.int32), np.array([2, -2, -2, 2, 3], np.int32)],
                         note="signs: the result has the dividend's")])
binary("BitwiseAnd", np.bitwise_and, {I: "a & b"}, low=-100, high=100)


def _clip_lower(ctx):
    t, lo, hi = ctx.inputs
    out = ctx.outputs[0]
    ctx.device_output()
    tmp = Tensor(out.shape, out.dtype, buf=ctx.temp(4 * out.size, "clipped-below"))
    lower_binary(ctx, MAX_F if out.dtype == F else "max(a, b)", t, lo, tmp)
    lower_binary(ctx, MIN_F if out.dtype == F else "min(a, b)", tmp, hi, out)


register("ClipByValue", reference=lambda attrs, t, lo, hi: np.minimum(np.maximum(t, lo), hi).astype(t.dtype),
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_clip_lower, dtypes=(F, I), rows=per_element,
         cases=[Case([((4, 5), F), np.array(-0.5, np.float32), np.array(0.7, np.float32)], note="scalar bounds"),
                Case([((3, 4), F), ((3, 4), F, -1, 0), ((3, 4), F, 0, 1)], note="element-wise bounds"),
                Case([((6,), I, -9, 9), np.array(-2, np.int32), np.array(3, np.int32)], note="int32"),
                Case([np.array([NAN, 2, -2, NAN, 0.5], np.float32), np.array(-1, np.float32), np.array(1, np.float32)],
                     note="NaN stays NaN (TF)")])


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
    _lower_unary({F: expr})(ctx)


register("FakeQuantWithMinMaxVars", reference=_fake_quant_ref,
         shape=lambda attrs, ins: [(ins[0].shape, F)], lower=_fake_quant_lower, host_inputs=(1, 2), rows=per_element,
         tol=(1e-6, "one rounding of a quantization step; values on a step edge may round either way"),
         cases=[Case([quarters((4, 9), 1) + np.float32(0.01), np.array(-1.0, np.float32), np.array(1.5, np.float32)]),
                Case([quarters((20,), 2) + np.float32(0.03), np.array(-0.3, np.float32), np.array(2.0, np.float32)],
                     attrs={"num_bits": 4, "narrow_range": True}, note="4 bits, narrow range")])
