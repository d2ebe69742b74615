"""The tolerance policy, written once: how close a GPU result must be to its reference.

Used by the unit tests (tests/test_ops*.py) and by the conformance suite alike; docs/conformance.md
explains it. Errors are counted in ULPs: one unit is ``eps(dtype) * max(1, |want|)`` per element
(a relative bound for values of magnitude >= 1, an absolute one of eps below), where eps is the
dtype's machine epsilon (float32 2**-23, float16 2**-10) -- so the same ULP count is automatically
looser on a float16 path, and only there. Integers and booleans must match exactly.

* Element-wise ops (and data movement, images, everything without a long sum): a fixed number of
  ULPs, the op's stated tolerance (``OpDef.tol``/``Case.tol``, each with its reason).
* Ops that accumulate K terms per output (family policies below: matmul, conv, reduce,
  normalization, pool): rounding grows like sqrt(K), so the bound is the stated one or
  ``ACCUMULATION_ULPS * sqrt(K)``, whichever is larger.
* Whole models and intermediate tensors of a model are measured against the tensor's scale
  (``max |want|``) instead of element by element: a softmax's tiny entries, or a sum that cancels
  to ~0, say nothing about the arithmetic (``per="tensor"``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

EPS = {d: float(np.finfo(d).eps) for d in ("float32", "float16", "float64")}   # machine epsilon per float dtype

# ULPs per sqrt(term) for ops summing K terms per output: float32 summation in another order
# than the (float64) reference rounds each partial sum once; random-sign rounding errors add up
# like a random walk, ~sqrt(K) units. 4 leaves a margin over the ~1 ULP*sqrt(K) measured on
# lavapipe/llvmpipe (docs/conformance.md).
ACCUMULATION_ULPS = 4.0


@dataclass(frozen=True)
class Tolerance:
    """Allowed error: ``ulps`` units of ``eps(dtype) * max(1, |want|)``, with the reason."""

    ulps: float
    reason: str
    dtype: str = "float32"

    @classmethod
    def from_rtol(cls, rtol: float, reason: str, dtype: str = "float32") -> "Tolerance":
        """The registry states tolerances as (rtol, reason): rtol * max(1, |want|) == rtol/eps ULPs."""
        return cls(float(rtol) / EPS[dtype], reason, dtype)

    @property
    def eps(self) -> float:
        return EPS[self.dtype]

    @property
    def rtol(self) -> float:
        return self.ulps * self.eps


EXACT = Tolerance(0.0, "integers, booleans and copies are exact")


@dataclass(frozen=True)
class ElementBound(Tolerance):
    """An absolute bound per output element (``bound``, broadcast to the output), for arithmetic
    whose rounding scales with the magnitudes summed rather than with the result: one unit is the
    element's bound, so ``ulps`` is 1 and errors are reported as fractions of it."""

    ulps: float = 1.0
    reason: str = ""
    bound: np.ndarray | None = None


# precision="float16" (wgpu_runtime/precision.py): the matmul / convolution operands rounded to
# f16 and their products summed in f16. Each of at most K + 2 rounding steps (both operands,
# then K sums) adds at most f16's unit roundoff of the magnitudes involved, and results below
# f16's smallest normal number carry its absolute spacing there.
HALF_UNIT_ROUNDOFF = 2.0 ** -11
HALF_FLOOR = 2.0 ** -14


def half_precision_tolerance(op, attrs: dict, inputs: Sequence, outputs: Sequence) -> ElementBound:
    """The bound of ``op`` (an OpDef of the matmul or conv family) computed in f16: per element,
    (K + 2) * 2**-11 * (the op on |inputs|: the sum of its terms' magnitudes) + 2**-14, K the
    terms per output (the family policy's length)."""
    k = max(1, int(family_policy(op.family).length(attrs, inputs, outputs)))
    magnitudes = op.run_reference(attrs, [np.abs(a) if np.asarray(a).dtype == np.float32 else a for a in inputs])
    bound = (k + 2) * HALF_UNIT_ROUNDOFF * np.abs(np.asarray(magnitudes[0], np.float64)) + HALF_FLOOR
    return ElementBound(reason=f"f16 operands and sums: (K + 2) x 2**-11 x sum of |terms| + 2**-14, K={k}",
                        dtype="float16", bound=bound)

# Whole models, measured against the output's scale (max |want|): float32 through many layers
# (MobileNetV2: 52 convolutions, K up to 960) and the GPU's exp/tanh. Only accumulation order and
# FMA contraction differ from the reference; measured ~1e-6 of the scale (docs/conformance.md).
# 840 ULPs ~= 1e-4 of the scale, the bound tests/test_models.py holds the same models to: >50x
# margin, while a real bug (a wrong pad, a transposed weight, a dropped bias) moves outputs >1e-2.
MODEL = Tolerance(840.0, "~1e-4 of the output scale for float32 through many layers")


# ------------------------------------------------------------------------------ comparison
@dataclass
class Comparison:
    ok: bool
    ulps: float                 # the worst error, in units of the policy (see module docstring)
    bound: float                # the allowed error, in the same units
    abs_err: float = 0.0        # the worst absolute error
    message: str = ""           # empty when ok

    @property
    def ratio(self) -> float:
        """ulps / bound: > 1 fails (inf for any error against an exact bound)."""
        if self.bound > 0:
            return self.ulps / self.bound
        return 0.0 if self.ulps == 0 else math.inf


def compare(got, want, tol: Tolerance | float, what: str = "", per: str = "element") -> Comparison:
    """Compare ``got`` with ``want`` under ``tol`` (a Tolerance or a float32 rtol).

    per="element": unit eps*max(1, |want_i|) per element; per="tensor": unit eps*max|want| for the
    whole tensor (models, intermediate tensors). NaNs must sit where the reference has them; equal
    infinities are no error."""
    if not isinstance(tol, Tolerance):
        tol = Tolerance.from_rtol(tol, "stated relative tolerance")
    got, want = np.asarray(got), np.asarray(want)
    prefix = f"{what}: " if what else ""
    if got.shape != want.shape:
        return Comparison(False, math.inf, tol.ulps, math.inf, f"{prefix}shape {got.shape} != {want.shape}")
    if want.dtype.kind in "biuOSU" or got.dtype.kind in "bOSU":
        if want.dtype.kind in "OSU" or got.dtype.kind in "OSU":
            same = got.tolist() == want.tolist()
        else:
            same = np.array_equal(got.astype(np.int64), want.astype(np.int64))
        if same:
            return Comparison(True, 0.0, 0.0)
        bad = np.flatnonzero(np.asarray(got != want).ravel())
        k = int(bad[0]) if bad.size else 0
        return Comparison(False, math.inf, 0.0, math.inf,
                          f"{prefix}{bad.size} of {want.size} elements differ (exact comparison); first at "
                          f"flat {k}: got {got.ravel()[k]!r}, want {want.ravel()[k]!r}")
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        k = int(np.flatnonzero(np.isnan(g).ravel() != np.isnan(w).ravel())[0])
        return Comparison(False, math.inf, tol.ulps, math.inf,
                          f"{prefix}NaN positions differ (first at flat {k}: got {g.ravel()[k]!r}, "
                          f"want {w.ravel()[k]!r})")
    ok = ~np.isnan(w)
    g, w = g[ok], w[ok]
    if not w.size:
        return Comparison(True, 0.0, tol.ulps)
    with np.errstate(invalid="ignore"):        # inf - inf: equal infinities are no error
        err = np.where(g == w, 0.0, np.abs(g - w))
    err = np.nan_to_num(err, nan=math.inf)
    if isinstance(tol, ElementBound):
        unit = np.broadcast_to(np.asarray(tol.bound, np.float64), want.shape)[ok]
    elif per == "tensor":
        finite = w[np.isfinite(w)]
        scale = float(np.max(np.abs(finite))) if finite.size else 1.0
        unit = np.full_like(w, tol.eps * (scale if scale > 0 else 1.0))
    else:
        unit = tol.eps * np.maximum(1.0, np.abs(w))
    units = err / unit
    k = int(np.argmax(units))
    worst = float(units[k])
    result = Comparison(bool(worst <= tol.ulps), worst, tol.ulps, float(np.max(err)))
    if not result.ok:
        scale_word = "of the tensor's scale" if per == "tensor" else "of max(1, |want|)"
        what_over = (f"{worst:.3g} x the element's bound" if isinstance(tol, ElementBound)
                     else f"{worst:.3g} ULP {scale_word} > {tol.ulps:.3g} allowed")
        result.message = (f"{prefix}error {what_over} ({tol.reason}); max abs error {result.abs_err:.3g}; "
                          f"worst: got {g[k]:.7g}, want {w[k]:.7g}")
    return result


def assert_close(got, want, tol: Tolerance | float, what: str = "", per: str = "element") -> Comparison:
    """:func:`compare`, raising AssertionError with its message on a mismatch (for tests)."""
    c = compare(got, want, tol, what, per)
    if not c.ok:
        raise AssertionError(c.message)
    return c


# ---------------------------------------------------------------------------- family policies
def _shape(x) -> tuple[int, ...]:
    return tuple(int(d) for d in (x.shape if hasattr(x, "shape") else np.shape(x)))


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _channels_last(attrs) -> bool:
    fmt = attrs.get("data_format")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    return not (fmt and str(fmt).startswith("NC"))


class Elementwise:
    """No long sums: the stated ULPs alone (element-wise math, data movement, images)."""

    accumulates = False

    def length(self, attrs, inputs, outputs) -> int:
        return 1


class MatmulPolicy(Elementwise):
    """K = the contraction length (after transpose_a / adj_x)."""

    accumulates = True

    def length(self, attrs, inputs, outputs) -> int:
        a = _shape(inputs[0])
        if len(a) < 2:
            return 1
        return a[-2] if (attrs.get("transpose_a") or attrs.get("adj_x")) else a[-1]


class ConvPolicy(Elementwise):
    """K = filter elements per output channel (input 1 is the filter for every conv op):
    kh*kw*cin for a convolution, kh*kw for a depthwise one, kh*kw*cout for a transposed one."""

    accumulates = True

    def length(self, attrs, inputs, outputs) -> int:
        if len(inputs) < 2 or not outputs:
            return 1
        out = _shape(outputs[0])
        if not out:
            return 1
        channels = out[-1] if _channels_last(attrs) else out[1 if len(out) > 1 else 0]
        return max(1, _size(_shape(inputs[1])) // max(1, channels))


class ReducePolicy(Elementwise):
    """K = input elements per output element; an output of the input's shape (softmax) normalises
    over the last axis."""

    accumulates = True

    def length(self, attrs, inputs, outputs) -> int:
        if not inputs or not outputs:
            return 1
        x, y = _shape(inputs[0]), _shape(outputs[0])
        if x == y:
            return x[-1] if x else 1
        return max(1, _size(x) // max(1, _size(y)))


class NormalizationPolicy(Elementwise):
    """Batch statistics (is_training) sum N*H*W terms per channel; otherwise one multiply-add."""

    accumulates = True

    def length(self, attrs, inputs, outputs) -> int:
        if not attrs.get("is_training") or not inputs:
            return 1
        x = _shape(inputs[0])
        if not x:
            return 1
        channels = x[-1] if _channels_last(attrs) else x[1 if len(x) > 1 else 0]
        return max(1, _size(x) // max(1, channels))


class PoolPolicy(Elementwise):
    """K = the window (AvgPool sums it; MaxPool is exact anyway)."""

    accumulates = True

    def length(self, attrs, inputs, outputs) -> int:
        k = attrs.get("ksize")
        return max(1, _size(k)) if k is not None else 1


# Keyed by the registry's op family (not by op: a new op inherits its family's policy).
FAMILY_POLICIES = {"matmul": MatmulPolicy(), "conv": ConvPolicy(), "reduce": ReducePolicy(),
                   "normalization": NormalizationPolicy(), "pool": PoolPolicy()}
_DEFAULT_POLICY = Elementwise()


def family_policy(family: str) -> Elementwise:
    return FAMILY_POLICIES.get(family, _DEFAULT_POLICY)


def stated(tol) -> Tolerance:
    """A registry tolerance -- (rtol, reason) as OpDef.tol/Case.tol state it, or a Tolerance."""
    if isinstance(tol, Tolerance):
        return tol
    rtol, reason = tol
    return Tolerance.from_rtol(rtol, reason)


def _compute_dtype(outputs) -> str:
    for y in outputs:
        if np.asarray(y).dtype == np.float16:
            return "float16"
    return "float32"


def op_tolerance(op, attrs: dict, inputs: Sequence, outputs: Sequence, override=None) -> Tolerance:
    """The tolerance for ``op`` (an OpDef) on these inputs/outputs (arrays or registry Tensors):
    the stated one (``override`` -- a case's -- or ``op.tol``) in ULPs, raised to ACCUMULATION_ULPS * sqrt(K) for
    an op of an accumulating family; in float16 ULPs when the op computes in float16."""
    base = stated(override if override is not None else op.tol)
    dtype = _compute_dtype(outputs)
    policy = family_policy(op.family)
    ulps, reason = base.ulps, base.reason
    if policy.accumulates:
        k = max(1, int(policy.length(attrs, inputs, outputs)))
        grown = ACCUMULATION_ULPS * math.sqrt(k)
        if grown > ulps:
            ulps, reason = grown, f"{ACCUMULATION_ULPS:g} ULP x sqrt(K) for K={k} summed terms ({base.reason})"
    return Tolerance(ulps, reason, dtype)


def case_tolerance(op, case, inputs: Sequence, outputs: Sequence) -> Tolerance:
    """The tolerance of one registry case (``case.tol`` overrides ``op.tol``, with its reason)."""
    return op_tolerance(op, case.attrs, inputs, outputs, case.tol)
