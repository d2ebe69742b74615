"""Reductions: Sum, Mean, Max, Min, Prod, All, Any (host axis input, keep_dims), EuclideanNorm,
ArgMax, ArgMin, Softmax and LogSoftmax (last axis); the scans Cumsum and Cumprod; Bincount and
DenseBincount (on the host).

Every reduction runs as passes over a [outer, R, inner] view (kernels/reduce.wgsl,
argminmax.wgsl, softmax_stats.wgsl): each invocation reduces at most CHUNK elements of one
output, so a long axis takes a second pass over the partials (and more) -- the chunks keep every
invocation far below llvmpipe's 65535 loop iterations and spread a long reduction over many
invocations. Several reduced axes that are not adjacent take one pass per group of axes.

Tolerance: float32 sums are accumulated in chunks of CHUNK terms, then chunk sums, unlike the
float64 references: |error| <~ sqrt(R) * eps * sum|x| (eps = 2^-24), which the cases keep below
1e-5 relative by their sizes (long cases use values exact in float32).

Cumsum / Cumprod: kernels/cumulative.wgsl, one invocation per column walking the axis in order
(TensorFlow's CPU kernel accumulates sequentially in the element type too). EuclideanNorm: a sum
of squares (reduce.wgsl with a zero centre), then a square root."""
from __future__ import annotations

import numpy as np

from .common import B, F, I, cdiv, host_value, prod, quarters
from .launch import LOOP_CAP, grid_1d
from .registry import Case, register
from .rows import DATA, from_rank, never
from .shapes import normalize_axis

CHUNK = 1024    # elements one invocation reduces in one pass
_OPS = {"sum": 0, "prod": 1, "max": 2, "min": 3}
_INIT_BITS = {  # identity of each reduction, as the u32 bits of the element type
    (F, "sum"): 0, (F, "prod"): 0x3F800000, (F, "max"): 0xFF800000, (F, "min"): 0x7F800000,
    (I, "sum"): 0, (I, "prod"): 1, (I, "max"): 0x80000000, (I, "min"): 0x7FFFFFFF,
    (B, "max"): 0, (B, "min"): 1,
}


def reduction_axes(axis, rank: int) -> tuple[int, ...]:
    """The sorted, non-negative axes of a reduction's axis input (scalar or list)."""
    return tuple(sorted({normalize_axis(int(a), rank) for a in np.asarray(axis).reshape(-1)}))


def _groups(shape, axes) -> list[list]:
    """[size, reduced] runs of adjacent dims alike (dims of size 1 dropped)."""
    out: list[list] = []
    for d, size in enumerate(shape):
        red = d in axes
        if size == 1:
            continue
        if out and out[-1][1] == red:
            out[-1][0] *= size
        else:
            out.append([size, red])
    return out


def reduce_passes(ctx, src, shape, axes, op: str, dtype: str, dst, divisor: int = 1, center=None,
                  center_mod: int = 1) -> None:
    """Reduce ``src`` (a Tensor or Buf holding ``shape``) over ``axes`` into the Buf ``dst`` with
    reduce.wgsl passes. ``divisor`` divides the result (Mean); ``center`` (a Buf), when given,
    makes the first pass sum (x - center[c])^2 with c = the output index modulo ``center_mod``
    (the innermost kept dimension: a channel)."""
    groups = _groups(shape, axes)
    if not any(red for _, red in groups):      # nothing to reduce: one pass of R = 1
        groups = [[prod(shape), False], [1, True]]
    dummy = ctx.constant(np.zeros(1, np.float32), F, "reduce-no-center")
    T = ctx.wgsl_type(dtype)
    first = True
    while any(red for _, red in groups):
        g = max(k for k, (_, red) in enumerate(groups) if red)
        outer = prod([s for s, _ in groups[:g]])
        inner = prod([s for s, _ in groups[g + 1:]])
        R = groups[g][0]
        S = max(1, cdiv(R, CHUNK))
        if S == 1:
            groups.pop(g)
        else:
            groups[g][0] = S
        last = not any(red for _, red in groups)
        n = outer * S * inner
        out = dst if last else ctx.temp(4 * n, "partial")
        sq = first and center is not None
        ctx.dispatch("reduce.wgsl", [src, out, center if sq else dummy], grid_1d(n),
                     params={"n": n, "R": R, "inner": inner, "S": S, "chunk": CHUNK,
                             "divisor": divisor if last else 1, "center_mod": center_mod,
                             "init": _INIT_BITS[(dtype, op)]},
                     template={"T": T}, constants={"OP": _OPS[op], "SQ_DEV": sq, "FLOAT": dtype == F})
        src, first = out, False


# ---------------------------------------------------------------------------- Sum, Mean, ...
def _keep(attrs) -> bool:
    return bool(attrs.get("keep_dims"))


def _reduce_shape(attrs, ins):
    x = ins[0]
    if ins[1].value is None:
        raise ValueError("the reduction axes must be known before running")
    axes = reduction_axes(ins[1].value, x.rank)
    keep = _keep(attrs)
    shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape) if keep or d not in axes)
    return [(shape, x.dtype)]


def _mean(x, axis, keepdims):
    n = prod([x.shape[a] for a in axis])
    if x.dtype.kind == "f":
        with np.errstate(invalid="ignore"):         # an empty axis: 0 / 0 = NaN, as TF
            return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64) / n
    s = np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64)
    return np.sign(s) * (np.abs(s) // max(n, 1))   # integer division truncates toward 0, as TF


def _extreme(fn, lowest):
    def f(x, axis, keepdims):   # the identity for empty axes: -inf / INT_MIN for Max
        if x.dtype.kind == "f":
            init = -np.inf if lowest else np.inf
        else:
            init = np.iinfo(x.dtype).min if lowest else np.iinfo(x.dtype).max
        return fn(x, axis=axis, keepdims=keepdims, initial=init)
    return f


def _wide(x):
    return np.float64 if x.dtype.kind == "f" else np.int64     # int32 wraps on the cast back, as TF


_NP_REDUCE = {
    "Sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims, dtype=_wide(x)),
    "Prod": lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims, dtype=_wide(x)),
    "Mean": _mean,
    "Max": _extreme(np.max, lowest=True),
    "Min": _extreme(np.min, lowest=False),
    "All": np.all,
    "Any": np.any,
}


def _reduce_reference(name):
    def reference(attrs, x, axis):
        axes = reduction_axes(axis, x.ndim)
        return np.asarray(_NP_REDUCE[name](x, axis=axes, keepdims=_keep(attrs))).astype(x.dtype)
    return reference


def _reduce_lower(op, mean=False):
    def lower(ctx):
        x, out = ctx.inputs[0], ctx.outputs[0]
        axes = reduction_axes(ctx.value(1), x.rank)
        count = prod([x.shape[a] for a in axes])
        if count == 1:                      # only axes of size 1: the same data, reshaped
            ctx.alias()
            return
        ctx.device_output()
        if mean and x.dtype == I and count == 0:
            raise ValueError("Mean of int32 over an empty axis divides by zero")
        reduce_passes(ctx, x, x.shape, axes, op, x.dtype, out.buf, divisor=count if mean else 1)
    return lower


def _reduce_cases(name, dtypes):
    lo, hi = (0.5, 1.5) if name == "Prod" else (-2.0, 2.0)

    def case(x, axes, note, **kw):
        return Case([x, np.array(axes, np.int32)], note=note, low=lo, high=hi, **kw)

    cases = [
        case(((3, 5, 4), F), [1], "middle axis"),
        case(((3, 5, 4), F), [-1], "last axis, keep_dims", attrs={"keep_dims": True}),
        case(((2, 3, 4, 5), F), [0, 2], "non-adjacent axes: two passes"),
        case(((2, 3, 4, 5), F), [1, 2], "NHWC spatial, keep_dims", attrs={"keep_dims": True}),
        case(((7, 9), F), [0, 1], "all axes"),
        case(((7,), F), 0, "scalar axis"),
        case(((4, 1, 3), F), [1], "axis of size 1: a view"),
        case(((2, 3), F), [], "no axes: identity"),
        case(((3, 1100, 2), F), [0, 2], "long kept axis"),
        case(((2, 0, 3), F), [1], "empty axis: NaN" if name == "Mean" else "empty axis: the identity"),
    ]
    if name == "Prod":
        powers = np.ldexp(1.0, np.random.default_rng(3).integers(-1, 2, size=(2, 1500, 2))).astype(np.float32)
        cases.append(case(powers, [1], "1500 powers of 2 (exact): 2 passes"))
    else:
        cases += [case(quarters((70001,), 1), [0], "70001 elements: 3 passes"),
                  case(quarters((2, 2500, 3), 2), [1], "middle axis of 2500: 2 passes")]
    if I in dtypes:
        r = 1 if name == "Prod" else 9
        cases += [Case([((3, 4, 5), I), np.array([1], np.int32)], low=-r, high=r, note="int32"),
                  Case([((4, 6), I), np.array([0, 1], np.int64)], low=-r, high=r, attrs={"keep_dims": True},
                       note="int32 all axes, int64 axes"),
                  Case([((3, 70000), I), np.array([1], np.int32)], low=-r, high=r, note="int32, 70000 long")]
    if name == "Mean":
        cases.append(Case([np.array([[-7, 8, -3], [-7, -1, 0]], np.int32), np.array([1], np.int32)],
                          note="int32: truncates toward 0"))
    if name in ("Max", "Min"):
        cases.append(Case([np.array([[1, np.nan, 3], [4, 5, 6]], np.float32), np.array([1], np.int32)],
                          note="NaN propagates"))
    return cases


# ------------------------------------------------------------------------- gradient rules
def _kept(attrs, x, axis, g) -> np.ndarray:
    """A reduction's output (or its gradient) with the reduced axes back as size 1."""
    return g if _keep(attrs) else np.reshape(g, [1 if d in reduction_axes(axis, x.ndim) else s
                                                 for d, s in enumerate(x.shape)])


def _reduce_grad(name):
    def grad(attrs, ins, outs, dys):
        x, axis = ins
        if x.dtype.kind != "f":
            return [None, None]
        dy = _kept(attrs, x, axis, dys[0])
        if name == "Sum":
            dx = np.broadcast_to(dy, x.shape)
        elif name == "Mean":
            count = prod([x.shape[a] for a in reduction_axes(axis, x.ndim)])
            dx = np.broadcast_to(dy / max(count, 1), x.shape)
        elif name == "Prod":
            dx = dy * _kept(attrs, x, axis, outs[0]) / x      # x without zeros (TF handles them apart)
        else:                      # Max / Min: shared equally between the tied extremes, as TF
            hit = x == _kept(attrs, x, axis, outs[0])
            n = np.sum(hit, axis=reduction_axes(axis, x.ndim), keepdims=True)
            dx = hit * (dy / n)
        return [np.ascontiguousarray(dx, dtype=x.dtype), None]
    return grad


def _axis_rows(name, attrs, ins, outs):
    """Row-wise rule of an op along the axes of input 1 (a reduction, a scan, ArgMax): row-wise
    unless dim 0 is among them (or unknown)."""
    in_rank = len(ins[0].shape)
    axes = [int(a) % max(1, in_rank) for a in np.reshape(ins[1].value, -1)] if ins[1].value is not None else [0]
    return "reduces over the batch" if 0 in axes or in_rank < 2 else DATA(name, attrs, ins, outs)


for _name, _op, _dtypes in [("Sum", "sum", (F, I)), ("Mean", "sum", (F, I)), ("Prod", "prod", (F, I)),
                            ("Max", "max", (F, I)), ("Min", "min", (F, I))]:
    register(_name, reference=_reduce_reference(_name), shape=_reduce_shape,
             lower=_reduce_lower(_op, mean=_name == "Mean"), host_inputs=(1,), dtypes=_dtypes,
             cases=_reduce_cases(_name, _dtypes), grad=_reduce_grad(_name), rows=_axis_rows)

for _name, _op in [("All", "min"), ("Any", "max")]:
    register(_name, reference=_reduce_reference(_name), shape=_reduce_shape,
             lower=_reduce_lower(_op), host_inputs=(1,), dtypes=(B,), rows=_axis_rows,
             cases=[Case([((3, 4, 5), B), np.array([1], np.int32)]),
                    Case([((2, 3, 4), B), np.array([0, 2], np.int32)], attrs={"keep_dims": True}),
                    Case([np.ones((2, 3000), bool), np.array([1], np.int32)], note="3000 long: 2 passes"),
                    Case([np.zeros((2, 0), bool), np.array([1], np.int32)], note="empty axis")])


# ----------------------------------------------------------------------------- ArgMax, ArgMin
def _arg_axis(attrs, x_rank, dim) -> int:
    return normalize_axis(int(np.asarray(dim).reshape(-1)[0]), x_rank)


def _arg_shape(attrs, ins):
    x = ins[0]
    if ins[1].value is None:
        raise ValueError("the dimension must be known before running")
    axis = _arg_axis(attrs, x.rank, ins[1].value)
    if x.shape[axis] == 0:
        raise ValueError(f"arg reduction over the empty axis {axis} of {x.shape}")
    return [(x.shape[:axis] + x.shape[axis + 1:], I)]


def _arg_reference(fn):
    def reference(attrs, x, dim):
        out = fn(x, axis=_arg_axis(attrs, x.ndim, dim))     # first index of ties, as TF
        return out.astype(np.int32 if attrs.get("output_type") == I else np.int64)
    return reference


def _arg_lower(is_min):
    def lower(ctx):
        x, out = ctx.inputs[0], ctx.outputs[0]
        axis = _arg_axis(ctx.attrs, x.rank, ctx.value(1))
        ctx.device_output()
        outer = prod(x.shape[:axis])
        inner = prod(x.shape[axis + 1:])
        R = x.shape[axis]
        vals, idx = x, ctx.constant(np.zeros(1, np.int32), I, "arg-no-index")
        T = ctx.wgsl_type(x.dtype)
        first = True
        while True:
            S = cdiv(R, CHUNK)
            n = outer * S * inner
            dst_vals = ctx.temp(4 * n, "best")
            dst_idx = out.buf if S == 1 else ctx.temp(4 * n, "best-index")
            ctx.dispatch("argminmax.wgsl", [vals, idx, dst_vals, dst_idx], grid_1d(n),
                         params={"n": n, "R": R, "inner": inner, "S": S, "chunk": CHUNK}, template={"T": T},
                         constants={"IS_MIN": is_min, "FIRST": first})
            if S == 1:
                return
            vals, idx, R, first = dst_vals, dst_idx, S, False
    return lower


def _arg_cases():
    d = lambda a: np.array(a, np.int32)  # noqa: E731
    return [Case([((3, 5, 4), F), d(1)], note="middle axis"),
            Case([((3, 5, 4), F), d(-1)], attrs={"output_type": I}, note="last axis, int32 output"),
            Case([((6, 4), F), d(0)], note="first axis"),
            Case([((9,), F), d(0)], note="vector"),
            Case([((4, 1, 3), F), d(1)], note="axis of size 1"),
            Case([np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32), d(1)], note="ties: first index"),
            Case([((3, 7), I), d(1)], low=-3, high=3, note="int32 with ties"),
            Case([((2, 3000, 2), I), d(1)], low=-50, high=50, note="3000 long, ties across chunks"),
            Case([((70001,), F), d(0)], note="70001 elements: 3 passes")]


register("ArgMax", reference=_arg_reference(np.argmax), shape=_arg_shape,
         lower=_arg_lower(False), host_inputs=(1,), dtypes=(F, I), cases=_arg_cases(), rows=_axis_rows)
register("ArgMin", reference=_arg_reference(np.argmin), shape=_arg_shape,
         lower=_arg_lower(True), host_inputs=(1,), dtypes=(F, I), cases=_arg_cases(), rows=_axis_rows)


# ------------------------------------------------------------------------ Softmax, LogSoftmax
def _softmax_reference(log):
    def reference(attrs, x):
        if x.size == 0:
            return x.copy()
        x64 = x.astype(np.float64)
        with np.errstate(invalid="ignore"):           # inf - inf: the NaN row TF gives
            d = x64 - np.max(x64, axis=-1, keepdims=True)
            s = np.sum(np.exp(d), axis=-1, keepdims=True)
            return (d - np.log(s) if log else np.exp(d) / s).astype(np.float32)
    return reference


def _softmax_shape(attrs, ins):
    if ins[0].rank < 1:
        raise ValueError("Softmax needs a tensor of rank >= 1")
    return [(ins[0].shape, F)]


def _softmax_lower(log):
    def lower(ctx):
        x, out = ctx.inputs[0], ctx.outputs[0]
        ctx.device_output()
        D = x.shape[-1]
        rows = out.size // D
        m, l, first = x, ctx.constant(np.zeros(1, np.float32), F, "softmax-no-partials"), True
        while first or D > 1:
            S = cdiv(D, CHUNK)
            n = rows * S
            dst_m, dst_l = ctx.temp(4 * n, "row-max"), ctx.temp(4 * n, "row-sum")
            ctx.dispatch("softmax_stats.wgsl", [m, l, dst_m, dst_l], grid_1d(n),
                         params={"n": n, "D": D, "S": S, "chunk": CHUNK},
                         constants={"FIRST": first})
            m, l, D, first = dst_m, dst_l, S, False
        ctx.dispatch("softmax.wgsl", [x, m, l, out.buf], grid_1d(out.size),
                     params={"n": out.size, "D": x.shape[-1]},
                     constants={"LOG": log})
    return lower


def _softmax_cases():
    return [Case([((3, 7), F)], low=-5, high=5),
            Case([((2, 3, 10), F)], low=-30, high=30, note="rank 3, large logits"),
            Case([((13,), F)], note="vector"),
            Case([((4, 1), F)], note="rows of 1"),
            Case([((2, 2500), F)], low=-10, high=10, note="2500 long: merged partials"),
            Case([np.array([[1e30, 1e30, -1e30], [0, 0, 0]], np.float32)], note="overflow-safe, uniform"),
            Case([((2, 0), F)], note="empty rows"),
            Case([np.array([[1, np.nan, 2], [1, np.inf, 2], [1, 2, 3], [-np.inf, 0, 1]], np.float32)],
                 note="a NaN or +inf makes its row NaN (TF)")]


def _softmax_grad(attrs, ins, outs, dys):
    y, dy = outs[0], dys[0]
    return [(y * (dy - np.sum(dy * y, axis=-1, keepdims=True))).astype(np.float32)]


def _log_softmax_grad(attrs, ins, outs, dys):
    y, dy = outs[0], dys[0]
    return [(dy - np.exp(y) * np.sum(dy, axis=-1, keepdims=True)).astype(np.float32)]


_SOFTMAX_ROWS = from_rank(2, "normalizes across rows")   # along the last axis
register("Softmax", reference=_softmax_reference(False), shape=_softmax_shape,
         lower=_softmax_lower(False), cases=_softmax_cases(), grad=_softmax_grad, rows=_SOFTMAX_ROWS,
         tol=(1e-5, "exp within a few ULP, sums of up to 2500 terms in chunks (~sqrt(n) eps)"))
register("LogSoftmax", reference=_softmax_reference(True), shape=_softmax_shape,
         lower=_softmax_lower(True), cases=_softmax_cases(), grad=_log_softmax_grad, rows=_SOFTMAX_ROWS,
         tol=(2e-5, "log(sum of exp): a few ULP of exp/log on values up to ~60"))


# ----------------------------------------------------------------------------- Cumsum/Cumprod
def _scan_ref(product):
    def ref(attrs, x, axis):
        axis = normalize_axis(int(np.reshape(axis, -1)[0]), x.ndim)
        y = np.flip(x, axis) if attrs.get("reverse") else x
        fn = np.cumprod if product else np.cumsum
        out = fn(y, axis=axis, dtype=x.dtype)          # sequential, in the element type
        if attrs.get("exclusive"):
            ident = np.ones_like if product else np.zeros_like
            first = ident(np.take(out, [0], axis=axis)) if x.shape[axis] else np.take(out, [], axis=axis)
            out = np.concatenate([first, np.take(out, range(x.shape[axis] - 1), axis=axis)], axis=axis)
        return np.flip(out, axis) if attrs.get("reverse") else out
    return ref


def _scan_lower(product):
    def lower(ctx):
        x = ctx.inputs[0]
        dst = ctx.device_output()
        axis = normalize_axis(int(np.reshape(ctx.value(1), -1)[0]), x.rank)
        n = x.shape[axis]
        if n > LOOP_CAP and ctx.device.is_software:
            raise ValueError(f"{ctx.node.op} along an axis of {n} > {LOOP_CAP} elements exceeds llvmpipe's "
                             "loop limit per invocation")
        inner = prod(x.shape[axis + 1:])
        cols = x.size // n
        T = ctx.wgsl_type(x.dtype)
        init = ("1" if x.dtype == I else "1.0") if product else ("0" if x.dtype == I else "0.0")
        ctx.dispatch("cumulative.wgsl", [x, dst], grid_1d(cols),
                     params={"cols": cols, "len": n, "inner": inner,
                             "exclusive": bool(ctx.attrs.get("exclusive")), "reverse": bool(ctx.attrs.get("reverse"))},
                     template={"T": T, "OP": "acc * v" if product else "acc + v", "INIT": f"{T}({init})"})
    return lower


def _scan_cases(product):
    hi = 1.5 if product else 2.0
    return [Case([((4, 7), F, -hi, hi), np.array(1, np.int32)], note="last axis"),
            Case([((5, 3, 2), F, -hi, hi), np.array(1, np.int32)], attrs={"exclusive": True}, note="exclusive"),
            Case([((6, 4), I, -3, 3), np.array(0, np.int32)], attrs={"reverse": True}, note="reverse, int32"),
            Case([((3, 5), F, -hi, hi), np.array(-1, np.int32)], attrs={"exclusive": True, "reverse": True},
                 note="exclusive + reverse"),
            Case([((0, 3), F), np.array(0, np.int32)], note="empty")]


for _name, _prod_op in (("Cumsum", False), ("Cumprod", True)):
    register(_name, reference=_scan_ref(_prod_op),
             shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=_scan_lower(_prod_op),
             host_inputs=(1,), dtypes=(F, I), cases=_scan_cases(_prod_op), rows=_axis_rows,
             tol=(1e-6, "sequential float32 accumulation as TF's; products of a few factors"))


# ------------------------------------------------------------------------------- EuclideanNorm
def _euclid_lower(ctx):
    x, out = ctx.inputs[0], ctx.outputs[0]
    dst = ctx.device_output()
    axes = reduction_axes(ctx.value(1), x.rank)
    sq = ctx.temp(4 * out.size, "sum-of-squares")
    zero = ctx.constant(np.zeros(1, np.float32), F, "euclidean-zero-centre")
    reduce_passes(ctx, x, x.shape, axes, "sum", F, sq, center=zero, center_mod=1)
    ctx.dispatch("unary.wgsl", [sq, dst], grid_1d(out.size),
                 params={"n": out.size, "alpha": 0.0, "beta": 0.0},
                 template={"T_IN": "f32", "T_OUT": "f32", "EXPR": "sqrt(x)"})


def _euclid_ref(attrs, x, axis):
    axes = reduction_axes(axis, x.ndim)
    return np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=axes, keepdims=bool(attrs.get("keep_dims")))).astype(x.dtype)


register("EuclideanNorm", reference=_euclid_ref, shape=_reduce_shape,
         lower=_euclid_lower, host_inputs=(1,), rows=_axis_rows,
         cases=[Case([quarters((4, 6), 3), np.array(1, np.int32)]),
                Case([quarters((2, 3, 4), 4), np.array([0, 2], np.int32)], attrs={"keep_dims": True}, note="keep dims")])


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


_COUNTS = never("counts across rows")
register("Bincount", reference=_bincount_ref, rows=_COUNTS,
         shape=lambda attrs, ins: [((int(np.reshape(host_value(ins[1], "size"), -1)[0]),), ins[2].dtype if ins[2].size else I)],
         host_inputs=(1,), dtypes=(F, I),
         cases=[Case([((20,), I, 0, 6), np.array(5, np.int32), np.zeros(0, np.float32)],
                     note="counts; values >= size dropped"),
                Case([((12,), I, 0, 4), np.array(4, np.int32), quarters((12,), 3)], note="weights")])
register("DenseBincount", reference=_dense_bincount_ref, rows=_COUNTS,
         shape=lambda attrs, ins: [((*ins[0].shape[:-1], int(np.reshape(host_value(ins[1], "size"), -1)[0])),
                                    ins[2].dtype if ins[2].size else ins[0].dtype)],
         host_inputs=(1,), dtypes=(F, I),
         cases=[Case([((3, 8), I, 0, 5), np.array(6, np.int32), np.zeros(0, np.int32)]),
                Case([((10,), I, 0, 4), np.array(4, np.int32), np.zeros(0, np.int32)], attrs={"binary_output": True})])
