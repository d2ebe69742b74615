"""BiasAdd and FusedBatchNorm / V2 / V3: per-channel maps, channels last (NHWC, NDHWC) or
channels first (NCHW, NCDHW).

Inference batch norm with constant statistics (a converted model's) is folded on the host into
one scale and bias per channel, then one elementwise kernel (kernels/batchnorm.wgsl); statistics
that live on the GPU are folded there (batchnorm_fold.wgsl). Training mode (is_training, TF's
default -- tf_keras LayerNormalization becomes such a node, with empty running statistics)
computes the batch mean and variance over every axis but the channel with reduce.wgsl passes
(any length), then outputs 1..4 as TF: running mean / unbiased variance (batchnorm_running.wgsl),
batch mean and biased variance; V3's reserve_space_3 is empty.

LRN (local response normalization across channels): kernels/lrn.wgsl, one invocation per element."""
from __future__ import annotations

import numpy as np

from .common import F, I, prod
from .elementwise import lower_binary
from .launch import grid_1d
from .reduce import reduce_passes
from .registry import Case, Tensor, register
from .rows import DATA


def _channel_axis(attrs, rank: int, formats) -> int:
    fmt = attrs.get("data_format") or formats[0]
    if fmt not in formats:
        raise ValueError(f"data_format {fmt!r} is not supported (use one of {', '.join(formats)})")
    return 1 if fmt.startswith("NC") else rank - 1


def _per_channel(values: np.ndarray, axis: int, rank: int) -> np.ndarray:
    shape = [1] * rank
    shape[axis] = -1
    return values.reshape(shape)


# ------------------------------------------------------------------------------------ BiasAdd
_BIAS_FORMATS = ("NHWC", "NCHW")


def _bias_shape(attrs, ins):
    x, b = ins
    if x.rank < 2:
        raise ValueError(f"BiasAdd needs an input of rank >= 2, got {x.shape}")
    c = x.shape[_channel_axis(attrs, x.rank, _BIAS_FORMATS)]
    if b.shape != (c,):
        raise ValueError(f"bias of shape {b.shape} does not match {c} channels of {x.shape}")
    return [(x.shape, x.dtype)]


def _bias_reference(attrs, x, b):
    return (x + _per_channel(b, _channel_axis(attrs, x.ndim, _BIAS_FORMATS), x.ndim)).astype(x.dtype)


def _bias_lower(ctx):
    x, b = ctx.inputs
    axis = _channel_axis(ctx.attrs, x.rank, _BIAS_FORMATS)
    bias = Tensor((b.shape[0],) + (1,) * (x.rank - 1 - axis), b.dtype, buf=ctx.device_input(1))
    ctx.device_output()
    lower_binary(ctx, "a + b", x, bias, ctx.outputs[0])


def _bias_grad(attrs, ins, outs, dys):
    x, dy = ins[0], dys[0]
    if x.dtype.kind != "f":
        return [None, None]
    axis = _channel_axis(attrs, x.ndim, _BIAS_FORMATS)
    return [dy, dy.sum(axis=tuple(d for d in range(x.ndim) if d != axis)).astype(x.dtype)]


register("BiasAdd", reference=_bias_reference, shape=_bias_shape, lower=_bias_lower,
         dtypes=(F, I), grad=_bias_grad, rows=DATA, cases=[
             Case([((2, 3, 4, 5), F), ((5,), F)], note="NHWC"),
             Case([((2, 5, 3, 4), F), ((5,), F)], attrs={"data_format": "NCHW"}, note="NCHW"),
             Case([((3, 7), F), ((7,), F)], note="rank 2"),
             Case([((2, 4, 3), F), ((4,), F)], attrs={"data_format": "NCHW"}, note="NCHW rank 3"),
             Case([((2, 1, 1, 1), F), ((1,), F)], note="one channel"),
             Case([((3, 4, 6), I), ((6,), I)], low=-9, high=9, note="int32"),
         ])


# ----------------------------------------------------------------------------- FusedBatchNorm
_BN_FORMATS = ("NHWC", "NCHW", "NDHWC", "NCDHW")


def _bn_attrs(attrs):
    """(epsilon, is_training, exponential_avg_factor) with TF's defaults."""
    eps, training, factor = attrs.get("epsilon"), attrs.get("is_training"), attrs.get("exponential_avg_factor")
    return (1e-4 if eps is None else float(eps), True if training is None else bool(training),
            1.0 if factor is None else float(factor))


def _bn_shape(n_outputs):
    def shape(attrs, ins):
        x, scale, offset, mean, var = ins
        if x.rank not in (4, 5):
            raise ValueError(f"FusedBatchNorm needs a 4-D or 5-D input, got {x.shape}")
        c = x.shape[_channel_axis(attrs, x.rank, _BN_FORMATS)]
        _, training, factor = _bn_attrs(attrs)
        for t, what in ((scale, "scale"), (offset, "offset"), (mean, "mean"), (var, "variance")):
            empty_ok = what in ("mean", "variance") and training and factor == 1.0
            if t.shape != (c,) and not (empty_ok and t.size == 0):
                raise ValueError(f"{what} of shape {t.shape} does not match {c} channels of {x.shape}")
        return [(x.shape, F)] + [((c,), F)] * 4 + [((0,), F)] * (n_outputs - 5)
    return shape


def _bn_reference(n_outputs):
    def reference(attrs, x, scale, offset, mean, var):
        eps, training, factor = _bn_attrs(attrs)
        axis = _channel_axis(attrs, x.ndim, _BN_FORMATS)
        x64 = x.astype(np.float64)
        if training:
            axes = tuple(d for d in range(x.ndim) if d != axis)
            n = x.size // x.shape[axis]
            use_m, use_v = x64.mean(axis=axes), x64.var(axis=axes)
            unbiased = use_v * n / max(n - 1, 1)
            out_m = use_m if factor == 1 else (1 - factor) * mean + factor * use_m
            out_v = unbiased if factor == 1 else (1 - factor) * var + factor * unbiased
        else:
            use_m, use_v = mean.astype(np.float64), var.astype(np.float64)
            out_m, out_v = mean, var
        s = scale / np.sqrt(use_v + eps)
        y = ((x64 - _per_channel(use_m, axis, x.ndim)) * _per_channel(s, axis, x.ndim)
             + _per_channel(offset, axis, x.ndim))
        outs = [y, out_m, out_v, use_m, use_v] + [np.zeros(0)] * (n_outputs - 5)
        return [np.asarray(o, np.float32) for o in outs]
    return reference


def _bn_lower(ctx):
    x = ctx.inputs[0]
    eps, training, factor = _bn_attrs(ctx.attrs)
    axis = _channel_axis(ctx.attrs, x.rank, _BN_FORMATS)
    C = x.shape[axis]
    inner = prod(x.shape[axis + 1:])
    y = ctx.device_output(0)
    if x.size == 0:     # y is empty, but the per-channel outputs 1..4 are not: no kernel reads x
        return
    channel_grid = grid_1d(C)
    if training:
        n = x.size // C
        axes = tuple(d for d in range(x.rank) if d != axis)
        mean, var = ctx.device_output(3), ctx.device_output(4)
        reduce_passes(ctx, x, x.shape, axes, "sum", F, mean, divisor=n)
        reduce_passes(ctx, x, x.shape, axes, "sum", F, var, divisor=n, center=mean, center_mod=C)
        ctx.dispatch("batchnorm_running.wgsl", [mean, var, *ctx.inputs[3:5], ctx.device_output(1),
                                                ctx.device_output(2)],
                     channel_grid, params={"C": C, "factor": factor, "correction": n / max(n - 1, 1)})
    else:
        for out, inp in ((1, 3), (2, 4), (3, 3), (4, 4)):
            ctx.alias(out, inp)
        mean, var = ctx.inputs[3:5]
    host = [t.value for t in ctx.inputs[1:5]]
    if not training and all(v is not None for v in host):     # constant statistics: fold on the host
        scale, offset, m, v = (np.asarray(a, np.float64) for a in host)
        s = scale / np.sqrt(v + eps)
        sb = ctx.constant(np.concatenate([s, offset - m * s]).astype(np.float32), F, "batchnorm-scale-bias")
    else:
        sb = ctx.temp(8 * C, "scale-bias")
        ctx.dispatch("batchnorm_fold.wgsl", [*ctx.inputs[1:3], mean, var, sb], channel_grid,
                     params={"C": C, "epsilon": eps})
    ctx.dispatch("batchnorm.wgsl", [x, sb, y], grid_1d(x.size), params={"n": x.size, "C": C, "inner": inner})


def _zero_mean(shape, rng):
    """Multiples of 1/4 whose mean along axis 2 is exactly 0 (each value and its negation): the
    statistics are exact in float32 in any summation order, so TF matches to rounding."""
    half = rng.integers(-8, 9, size=shape[:2] + (shape[2] // 2,) + shape[3:]) / 4
    both = np.concatenate([half, -half], axis=2)
    return rng.permuted(both, axis=2).astype(np.float32)


def _bn_cases(v3):
    rng = np.random.default_rng(7)

    def var(c):
        return rng.uniform(0.25, 2.0, c).astype(np.float32)

    def case(shape, c, note, empty_stats=False, **attrs):
        stats = [np.zeros(0, np.float32)] * 2 if empty_stats else [((c,), F), var(c)]
        return Case([(shape, F), ((c,), F), ((c,), F), *stats], attrs={"epsilon": 0.001, **attrs}, note=note)

    cases = [
        case((2, 3, 4, 5), 5, "inference NHWC", is_training=False),
        case((2, 5, 3, 4), 5, "inference NCHW", is_training=False, data_format="NCHW"),
        case((1, 1, 1, 3), 3, "inference 1x1", is_training=False, epsilon=0.1),
        case((2, 3, 4, 5), 5, "training NHWC", is_training=True),
        case((2, 5, 3, 4), 5, "training NCHW", is_training=True, data_format="NCHW"),
        case((3, 2, 2, 4), 4, "training, exponential_avg_factor", is_training=True, exponential_avg_factor=0.25),
        case((1, 6, 10, 1), 6, "training, empty statistics (tf_keras LayerNormalization)",
             empty_stats=True, is_training=True, data_format="NCHW"),
        case((2, 3, 4, 5), 5, "is_training omitted: TF's default (true)"),
    ]
    if v3:
        cases += [
            case((1, 2, 3, 4, 3), 3, "NDHWC inference", is_training=False, data_format="NDHWC"),
            case((2, 3, 2, 3, 2), 3, "NCDHW training", is_training=True, data_format="NCDHW"),
            Case([_zero_mean((1, 2, 70002, 1), rng), ((2,), F), ((2,), F), np.zeros(0, np.float32),
                  np.zeros(0, np.float32)], attrs={"is_training": True, "data_format": "NCHW"},
                 note="training over 70002 values: 3 reduction passes (exact statistics)"),
        ]
    return cases


def _bn_rows(name, attrs, ins, outs):
    if attrs.get("is_training") is not False:     # TF's default: training
        return "normalizes over the batch (training mode)"
    return DATA(name, attrs, ins, outs)


for _name, _n in [("FusedBatchNorm", 5), ("FusedBatchNormV2", 5), ("FusedBatchNormV3", 6)]:
    register(_name, reference=_bn_reference(_n), shape=_bn_shape(_n), lower=_bn_lower, rows=_bn_rows,
             cases=_bn_cases(_name == "FusedBatchNormV3"), tf_outputs=3,
             tol=(1e-5, "float32 statistics summed in chunks vs float64; (x - m) * s + o with s folded"))


# ---------------------------------------------------------------------------------------- LRN
def _lrn_attrs(attrs):
    r = int(attrs.get("depth_radius") if attrs.get("depth_radius") is not None else 5)
    if r < 0:
        raise ValueError(f"LRN depth_radius must be >= 0, got {r}")     # as TF
    return (r,
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
    r, bias, alpha, beta = _lrn_attrs(ctx.attrs)
    ctx.dispatch("lrn.wgsl", [x, dst], grid_1d(out.size),
                 params={"n": out.size, "depth": x.shape[-1], "radius": r, "bias": bias, "alpha": alpha, "beta": beta})


register("LRN", reference=_lrn_ref, shape=lambda attrs, ins: [(ins[0].shape, F)],
         lower=_lrn_lower, rows=DATA, tol=(4e-6, "pow() and a short sum in float32"),
         cases=[Case([((2, 3, 3, 8), F)], attrs={"depth_radius": 2, "bias": 1.0, "alpha": 0.5, "beta": 0.75}),
                Case([((1, 2, 2, 12), F)], note="TF defaults (radius 5)")])
