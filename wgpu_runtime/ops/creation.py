"""Creation ops: tensors made from a few scalars or a shape.

* OneHot: on the GPU, kernels/one_hot.wgsl, one invocation per output element.
* LinSpace and TF.js's Ones / Zeros: on the host (their inputs are known when planning, so they
  fold there).
* Random sampling (RandomUniform, RandomStandardNormal, TruncatedNormal, RandomUniformInt,
  Multinomial): runtime ops, run when executed and never folded, on the host with numpy's
  generator.
"""
from __future__ import annotations

import numpy as np

from .common import B, F, I, host_value, prod
from .launch import grid_1d
from .registry import Case, register
from .runtime import runtime_op

f32 = np.float32


# ----------------------------------------------------------------------------------- OneHot
def _onehot_axis(attrs, rank: int) -> int:
    axis = int(attrs.get("axis") if attrs.get("axis") is not None else -1)
    if axis == -1:
        return rank
    if not 0 <= axis <= rank:
        raise ValueError(f"OneHot axis {axis} is out of range for indices of rank {rank}")
    return axis


def _onehot_shape(attrs, ins):
    depth = int(np.reshape(host_value(ins[1], "OneHot's depth"), -1)[0])
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
    a = _onehot_axis(ctx.attrs, idx.rank)
    depth = out.shape[a]
    ctx.dispatch("one_hot.wgsl", [idx, ctx.inputs[2], ctx.inputs[3], dst], grid_1d(out.size),
                 params={"n": out.size, "depth": depth, "inner": prod(idx.shape[a:])},
                 template={"T": ctx.wgsl_type(out.dtype)})


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


# ------------------------------------------------------------- LinSpace, Ones, Zeros (host)
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
         shape=lambda attrs, ins: [(_linspace_ref(attrs, *(host_value(t, "LinSpace's arguments") for t in ins)).shape, F)],
         host_inputs=(0, 1, 2),
         cases=[Case([np.array(-1.5, np.float32), np.array(2.0, np.float32), np.array(8, np.int32)]),
                Case([np.array(3.0, np.float32), np.array(3.0, np.float32), np.array(1, np.int32)], note="one")])


def _fill_op(value):
    def ref(attrs, shape):
        dtype = attrs.get("dtype") or attrs.get("T") or F
        return np.full([int(d) for d in np.reshape(shape, -1)], value, np.dtype(dtype))
    return ref


for _name, _v in (("Ones", 1), ("Zeros", 0)):      # TF.js's names (tf.ones/zeros); not TF ops
    register(_name, reference=_fill_op(_v),
             shape=lambda attrs, ins, f=_fill_op(_v): [(f(attrs, host_value(ins[0], "the shape")).shape,
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
    return [int(d) for d in np.reshape(host_value(t, "the shape"), -1)]


runtime_op("RandomUniform", impl=_random(lambda g, s, a, rt, i: g.random(s)), shape=_RANDOM_SHAPE)
runtime_op("RandomStandardNormal", impl=_random(lambda g, s, a, rt, i: g.standard_normal(s)),
           shape=_RANDOM_SHAPE)
runtime_op("TruncatedNormal", impl=_random(_truncated), shape=_RANDOM_SHAPE)
runtime_op("RandomUniformInt", impl=_random(_uniform_int, I),
           shape=lambda attrs, ins: [(tuple(_shape_of_t(ins[0])), ins[1].dtype)])
runtime_op("Multinomial", impl=_multinomial,
           shape=lambda attrs, ins: [((ins[0].shape[0], int(np.reshape(host_value(ins[1], "num_samples"), -1)[0])), I)])
