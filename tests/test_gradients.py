"""Every registry op's gradient rule against TensorFlow's, on the op's own (small, float) cases.

For a case with inputs x_i and a random cotangent dy (seeded), both sides compute the
vector-Jacobian product d sum(op(x) * dy) / d x_i: ours through the op's ``grad`` rule
(wgpu_runtime.autograd.vjp), TensorFlow's through tf.GradientTape over the same tf.raw_ops call.
Ops that are not TF raw ops (TF.js's Prelu) are checked against central finite differences in
float64 instead.

Tolerance: |ours - tf| <= 1e-4 * max(1, max |tf|) per input. Both sides are float32 sums of up
to a few thousand products taken in different orders (BLAS blocking vs TF's Eigen kernels), so
agreement is ~1e-6 relative; 1e-4 leaves room for the larger sums of convolution filter
gradients while still catching any wrong index, sign or scale (those are O(1) errors).
Finite differences get 1e-3: the references round their outputs to float32, so a difference
quotient over eps = 1e-3 carries ~1e-7 * |sum| / eps of rounding noise.
"""
import inspect

import numpy as np
import pytest

from wgpu_runtime.autograd import Var, apply, backward, vjp
from wgpu_runtime.ops import REGISTRY

MAX_ELEMENTS = 20000
TOL = 1e-4
FD_TOL = 1e-3


def _small_float_cases():
    out = []
    for name, op in sorted(REGISTRY.items()):
        if op.grad is None or name in op.names[1:]:
            continue
        for i, case in enumerate(op.cases):
            inputs = case.materialize(seed=i)
            if not any(a.dtype == np.float32 for a in inputs):
                continue
            if sum(a.size for a in inputs) > MAX_ELEMENTS or any(a.size == 0 for a in inputs):
                continue
            if any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in inputs):
                continue
            if any(abs(float(np.max(np.abs(a), initial=0))) > 1e6 for a in inputs if a.dtype.kind == "f"):
                continue   # overflow-edge cases (Softmax of 1e30) test the forward, not the calculus
            if not any(np.asarray(o).dtype == np.float32 for o in op.run_reference(case.attrs, inputs)):
                continue   # e.g. Cast to int32: nothing to differentiate
            out.append((name, i))
    return out


CASES = _small_float_cases()


def _tf_vjp(tf, name, case, inputs, dys):
    fn = getattr(tf.raw_ops, name)
    params = [p for p in inspect.signature(fn).parameters if p != "name"]
    groups = case.tf_inputs or list(range(len(inputs)))
    consts = [tf.constant(a) for a in inputs]
    with tf.GradientTape(persistent=True) as tape:
        for a, c in zip(inputs, consts):
            if a.dtype == np.float32:
                tape.watch(c)
        args = {}
        for pname, g in zip(params, groups):
            args[pname] = [consts[i] for i in g] if isinstance(g, list) else consts[g]
        for k, v in case.attrs.items():
            if k in params and k not in args:
                args[k] = v
        out = fn(**args)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        total = tf.add_n([tf.reduce_sum(o * tf.constant(d)) for o, d in zip(outs, dys) if d is not None])
    return [tape.gradient(total, c) if a.dtype == np.float32 else None for a, c in zip(inputs, consts)]


def _fd_vjp(name, case, inputs, dys, eps=1e-3):
    """Central differences of sum(op(x) * dy) in float64 (references keep float64 when fed it)."""
    op = REGISTRY[name]
    x64 = [a.astype(np.float64) if a.dtype == np.float32 else a for a in inputs]

    def f(xs):
        return sum(float(np.sum(o.astype(np.float64) * d)) for o, d in zip(op.run_reference(case.attrs, xs), dys))
    grads = []
    for k, a in enumerate(x64):
        if inputs[k].dtype != np.float32:
            grads.append(None)
            continue
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [x.copy() for x in x64]
            minus = [x.copy() for x in x64]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (f(plus) - f(minus)) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("name,idx", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_gradient_matches_tensorflow(name, idx):
    op = REGISTRY[name]
    case = op.cases[idx]
    inputs = case.materialize(seed=idx)
    outs = op.run_reference(case.attrs, inputs)
    rng = np.random.default_rng(1000 + idx)
    dys = [rng.standard_normal(np.shape(o)).astype(np.float32) if np.asarray(o).dtype == np.float32 else None
           for o in outs]
    ours = vjp(name, case.attrs, inputs, dys)
    tf = pytest.importorskip("tensorflow")
    theirs, what = None, "TF"
    if hasattr(tf.raw_ops, name):
        try:
            theirs = [None if g is None else np.asarray(tf.convert_to_tensor(g))
                      for g in _tf_vjp(tf, name, case, inputs, dys)]
        except (LookupError, tf.errors.InvalidArgumentError):
            theirs = None     # TF has no gradient for it (Snapshot), or no CPU kernel (dilated backprop)
    if theirs is None:
        theirs, what = _fd_vjp(name, case, inputs, dys), "finite differences"
    for k, (g, want) in enumerate(zip(ours, theirs)):
        if want is None:     # not differentiable for TF (Floor, StopGradient, integer inputs)
            assert g is None or not np.any(g), f"{name} case {idx} input {k}: TF has no gradient, ours is nonzero"
            continue
        assert g is not None, f"{name} case {idx} input {k}: {what} has a gradient, the rule gives none"
        g = np.asarray(g, np.float64)
        assert g.shape == want.shape, f"{name} case {idx} input {k}: shape {g.shape} != {want.shape}"
        scale = max(1.0, float(np.max(np.abs(want), initial=0)))
        err = float(np.max(np.abs(g - want), initial=0))
        tol = TOL if what == "TF" else FD_TOL
        assert err <= tol * scale, (f"{name} case {idx} ({case.note}) input {k}: max error {err:.3g} "
                                    f"vs {what} (scale {scale:.3g})")


def test_backward_accumulates_through_a_small_graph():
    """d/dw of sum(relu(x @ w + w) * 2), w used twice, through the tape."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 4)).astype(np.float32)
    w = Var(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
    h = apply("AddV2", {}, apply("MatMul", {}, x, w), w)
    y = apply("Sum", {}, apply("Mul", {}, apply("Relu", {}, h), np.float32(2)), np.array([0, 1], np.int32))
    backward(y)
    hv = x @ w.value + w.value
    mask = (hv > 0) * 2.0
    want = x.T @ mask + mask
    np.testing.assert_allclose(w.grad, want, rtol=1e-5, atol=1e-5)


def _fast_cases():
    from wgpu_runtime.autograd.kernels import FAST

    return [(name, i) for name in sorted(FAST) for i, c in enumerate(REGISTRY[name].cases)
            if all(a.dtype == np.float32 for a in c.materialize(seed=i)[:2])]


@pytest.mark.parametrize("name,idx", _fast_cases(), ids=[f"{n}-{i}" for n, i in _fast_cases()])
def test_fast_forward_matches_reference(name, idx):
    """The tape's float32 fast paths compute what the references compute: |fast - ref| <=
    2e-5 * max(1, |ref|) (the op's own GPU tolerance class: float32 sums in another order)."""
    from wgpu_runtime.autograd.kernels import forward

    op = REGISTRY[name]
    case = op.cases[idx]
    inputs = case.materialize(seed=idx)
    want = op.run_reference(case.attrs, inputs)
    got = forward(name, op, case.attrs, inputs)
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert g.shape == w.shape
        assert np.array_equal(np.isnan(g), np.isnan(w))
        ok = ~np.isnan(w)
        with np.errstate(invalid="ignore"):
            err = np.where(g[ok] == w[ok], 0, np.abs(g[ok] - w[ok]))
        assert (err <= 2e-5 * np.maximum(1, np.abs(w[ok]))).all(), f"max error {err.max():.3g}"
