"""The registry's op cases on one device, each against the op's numpy reference.

The same cases, the same seeds (``case.materialize(seed=index)``) and the same tolerance policy
(wgpu_runtime.tolerance) as tests/test_ops.py: a case passing here passes there."""
from __future__ import annotations

import fnmatch
import math
from typing import Callable, Iterable

from ..graph.single_op import run_op
from ..ops import REGISTRY, tiled
from ..tolerance import case_tolerance, compare, half_precision_tolerance
from .results import CaseResult


def select_ops(patterns: Iterable[str] | None) -> list[str]:
    """Registry op names matching any of ``patterns`` (fnmatch globs; None: every op)."""
    names = sorted(REGISTRY)
    if patterns is None:
        return names
    pats = [p for p in patterns if p]
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]


def case_list(ops: list[str]) -> list[tuple[str, int]]:
    return [(name, i) for name in ops for i in range(len(REGISTRY[name].cases))]


def run_case(name: str, index: int, device, weights: tuple[int, ...] = (), precision: str = "float32") -> CaseResult:
    """Registry case ``index`` of op ``name`` on ``device`` against the numpy reference. Inputs
    at the op's host-input positions and at ``weights`` are model constants, the others fed.
    ``precision`` "float16" (precision.py): a case whose lowering ran an f16 kernel is held to
    f16's rounding bound (tolerance.half_precision_tolerance) instead of the float32 policy."""
    op = REGISTRY[name]
    case = op.cases[index]
    inputs = case.materialize(seed=index)
    try:
        want = op.run_reference(case.attrs, inputs)
    except Exception as e:  # noqa: BLE001 -- a broken reference is a failure to report, not a crash
        return CaseResult(name, index, case.note, False, math.inf, 0.0, f"reference raised {type(e).__name__}: {e}")
    tol = case_tolerance(op, case, inputs, want)
    try:
        consts = None if not weights else {i for i in range(len(inputs))
                                           if i in weights or op.is_host_input(i, len(inputs))}
        before = tiled.half_launches(device)
        got = run_op(name, case.attrs, inputs, device, n_outputs=len(want), const_inputs=consts, precision=precision)
        if tiled.half_launches(device) > before:
            tol = half_precision_tolerance(op, case.attrs, inputs, want)
    except Exception as e:  # noqa: BLE001 -- any failure of the runtime on a case is a finding
        return CaseResult(name, index, case.note, False, math.inf, tol.ulps, f"{type(e).__name__}: {e}")
    worst = CaseResult(name, index, case.note, True, 0.0, tol.ulps)
    for k, (g, w) in enumerate(zip(got, want)):
        c = compare(g, w, tol, f"output {k}")
        if not c.ok and worst.passed:
            worst.passed, worst.message = False, c.message
        if c.ulps >= worst.ulps:
            worst.ulps, worst.bound = c.ulps, c.bound
    return worst


def run_cases(cases: list[tuple[str, int]], device, advance: Callable[[], None] = lambda: None,
              precision: str = "float32") -> list[CaseResult]:
    results = []
    for name, index in cases:
        results.append(run_case(name, index, device, precision=precision))
        advance()
    return results
