"""The autotuner: time each kernel family's candidate variants for a model's shape classes on its
device, once, and keep the winners in the persistent tuning cache (``wgpu_runtime.tuning.cache``).

The model's plan is built while recording the choice points (``tuning.recording``); each point
not yet in the cache is timed on the node that raised it, alone: a one-node model
(``single_op.op_model``) with that node's attributes, its weights as constants and random inputs
of the planned shapes, once per candidate under ``tuning.forcing``. GPU time comes from timestamp
queries where the adapter has them (``executor.run_profiled``), else wall time of whole runs;
the median of a few runs counts. A candidate that fails to compile or run, or whose result
differs from the first candidate's, is recorded as failed and never wins.

A candidate faster alone than the default (by more than MARGIN) is then timed against it in
the whole model (graph/in_context.py), and wins only if it is faster there too, by MARGIN and in
every round: on lavapipe one-node timings of sub-millisecond kernels picked variants that made
MobileNetV2 slower (docs/benchmarks.md). Where the default itself fails, the fastest candidate
that ran wins without that check.
"""
from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import tuning
from ..dtypes import BOOL, host_numpy_dtype, is_integer
from ..errors import WgpuRuntimeError
from ..ops import registry
from ..tuning import cache as tuning_cache
from . import executor, in_context
from .plan import DataDependentError, Planner, without_uncompiled_variants
from .single_op import op_model

logger = logging.getLogger(__name__)
MARGIN = 0.05     # a candidate replaces the default only when at least 5 % faster (median of runs)


@dataclass
class CandidateTime:
    name: str
    ms: float | None = None          # median time; None when it failed
    error: str | None = None         # why it failed (compile, run, wrong result)


@dataclass
class PointReport:
    """One choice point: the node that raised it, each candidate's time, the winner."""
    family: str
    shape_class: tuple
    node: str
    op: str
    default: str
    winner: str
    candidates: list[CandidateTime] = field(default_factory=list)
    timer: str = ""                  # "gpu" (timestamp queries), "wall", or "" (not timed: cached)
    cached: bool = False             # the winner came from the cache; nothing was timed
    in_context_ms: dict | None = None   # {default, fastest alone: ms} in the whole model (in_context.py)
    in_context_rounds_ms: dict | None = None   # the same per round
    in_context_error: str | None = None  # why that check could not run (the default stayed)

    @property
    def speedup(self) -> float | None:
        """The default's time over the winner's (None when either is unknown)."""
        t = {c.name: c.ms for c in self.candidates}
        d, w = t.get(self.default), t.get(self.winner)
        return d / w if d and w else None

    @property
    def fastest_alone(self) -> str | None:
        """The candidate with the lowest one-node time (None when none was timed)."""
        ok = [c for c in self.candidates if c.ms is not None]
        return min(ok, key=lambda c: c.ms).name if ok else None


@dataclass
class TuneReport:
    adapter: str
    cache_path: str
    saved: bool
    points: list[PointReport] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for p, row in zip(self.points, d["points"]):
            row["shape_class"] = list(p.shape_class)
            row["speedup"] = p.speedup
            row["fastest_alone"] = p.fastest_alone
        return d


class _RecordingPlanner(Planner):
    """A planner that notes, for each choice point, the node that raised it and its inputs."""

    def __init__(self, model, device, points: list):
        super().__init__(model, device)
        self.points = points
        self.sites: list[tuple] = []         # (ChoicePoint, node, [Tensor])

    def _plan_node(self, node, graph, env) -> None:
        n0 = len(self.points)
        super()._plan_node(node, graph, env)
        if len(self.points) > n0:
            ins = [env[ref] for ref in graph.data_inputs(node)]
            self.sites.extend((p, node, ins) for p in self.points[n0:])


def choice_points(model, feeds: Mapping) -> list[tuple]:
    """(ChoicePoint, node, input Tensors) of every :func:`tuning.choose` call made while planning
    ``model`` (a GraphModel on the static executor) for ``feeds``."""
    shapes, targets, _ = in_context.plan_request(model, feeds)

    def attempt():      # (made again without a variant whose kernel does not compile here)
        with model.device.lock, tuning.recording() as points:
            planner = _RecordingPlanner(model, model.device, points)
            planner.build(model.graph, shapes, targets)
        return planner.sites
    return without_uncompiled_variants(model.device, attempt)


def _example(t, rng) -> np.ndarray:
    if t.value is not None:
        return np.asarray(t.value)
    if t.dtype == BOOL:
        return np.zeros(t.shape, bool)
    if is_integer(t.dtype):        # indices and the like: 0 is always in range
        return np.zeros(t.shape, host_numpy_dtype(t.dtype))
    return rng.uniform(-1, 1, size=t.shape).astype(host_numpy_dtype(t.dtype))


def _time_candidate(device, node, ins, point, name, runs, warmup):
    """(median ms, output 0, timer) of ``node`` alone with variant ``name`` forced."""
    rng = np.random.default_rng(0)
    arrays = [_example(t, rng) for t in ins]
    consts = {i for i, t in enumerate(ins) if t.value is not None}
    with tuning.forcing({(point.family, point.shape_class): name}):
        model = op_model(node.op, dict(node.attrs), arrays, device, const_inputs=consts)
        feeds = {f"in{i}": a for i, a in enumerate(arrays) if i not in consts}
        with device.lock:
            plan, dev_feeds = model.prepare(feeds, ["op:0"])
            out = None
            for _ in range(max(1, warmup)):
                out = executor.run(device, plan, dev_feeds)[0]
            times, timer = time_plan(device, plan, dev_feeds, runs)
    return statistics.median(times), out, timer


def time_plan(device, plan, feeds, runs: int) -> tuple[list[float], str]:
    """Milliseconds of each of ``runs`` runs of ``plan`` and the timer: ``"gpu"`` (the sum of its
    dispatches' GPU timestamps, where the adapter has them) or ``"wall"`` (whole runs)."""
    gpu = device.has_timestamps and bool(plan.steps)
    times = []
    for _ in range(runs):
        if gpu:
            _, step_ms = executor.run_profiled(device, plan, feeds)
            times.append(sum(step_ms))
        else:
            t0 = time.perf_counter()
            executor.run(device, plan, feeds)
            times.append((time.perf_counter() - t0) * 1e3)
    return times, "gpu" if gpu else "wall"


def _reference(node, ins):
    """The numpy reference's output 0 on the same example inputs (when the default variant failed)."""
    rng = np.random.default_rng(0)
    try:
        return registry.get(node.op).run_reference(dict(node.attrs), [_example(t, rng) for t in ins])[0]
    except Exception:   # noqa: BLE001 -- no reference: the candidate cannot be checked, so it fails
        return None


def _agrees(out, ref) -> bool:
    # Variants differ in summation order only; with inputs in [-1, 1) float32 sums of a few
    # thousand terms agree to ~1e-4 relative to the largest value. 1e-3 flags a wrong kernel.
    if out is None or ref is None or np.shape(out) != np.shape(ref):
        return False
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    return bool(np.allclose(out, ref, rtol=0, atol=1e-3 * scale, equal_nan=True))


def tune(model, feeds: Mapping, runs: int = 5, warmup: int = 1, retune: bool = False,
         progress: Callable[[int, int, str], None] | None = None) -> TuneReport:
    """Time the candidates of every choice point of ``model`` (a GraphModel) planned for ``feeds``
    (input name -> array) that the cache lacks (all of them with ``retune``), store the winners
    and save the cache. Returns what was timed and chosen, per choice point. ``progress(done,
    total, what)`` is called before each shape class (``what``: its family and class) and once
    at the end (done == total)."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    device = model.device
    cache = tuning_cache.for_device(device)
    report = TuneReport(adapter=device.name, cache_path=str(cache.path), saved=False)
    if model.is_dynamic:
        logger.warning("this model runs on the dynamic executor: its kernels are not tuned")
        return report
    try:
        sites = choice_points(model, feeds)
    except DataDependentError:
        logger.warning("this model needs the dynamic executor (data-dependent shapes): its kernels are not tuned")
        return report
    seen = set()
    changed = False
    total = len({(p.family, p.shape_class) for p, _, _ in sites})
    for point, node, ins in sites:
        key = (point.family, point.shape_class)
        if key in seen:
            continue
        if progress is not None:
            progress(len(seen), total, f"{point.family} {point.shape_class}")
        seen.add(key)
        default = point.candidates[0]
        row = PointReport(point.family, point.shape_class, node.name, node.op, default, default)
        report.points.append(row)
        cached = cache.entries.get(key)
        if len(point.candidates) < 2:
            continue
        known = set(cached.get("timings_ms", {})) | set(cached.get("failed", {})) if cached else set()
        if cached and not retune and cached["variant"] in point.candidates and known >= set(point.candidates):
            row.winner, row.cached = cached["variant"], True
            row.in_context_ms = cached.get("in_context_ms")
            timings = cached.get("timings_ms", {})
            row.candidates = [CandidateTime(n, timings.get(n), cached.get("failed", {}).get(n))
                              for n in point.candidates]
            continue
        ref = None
        for name in point.candidates:
            try:
                ms, out, row.timer = _time_candidate(device, node, ins, point, name, runs, warmup)
            except Exception as e:      # noqa: BLE001 -- one variant failing (compile, driver) must not stop tuning
                error = _one_line(e) if isinstance(e, WgpuRuntimeError) else f"{type(e).__name__}: {_one_line(e)}"
                row.candidates.append(CandidateTime(name, None, error))
                logger.warning("%s %s: variant %s failed: %s", point.family, point.shape_class, name, error)
                continue
            if ref is None:
                ref = out if name == default else _reference(node, ins)
            if name != default and not _agrees(out, ref):
                row.candidates.append(CandidateTime(name, None, "result differs from the default variant's"))
                logger.warning("%s %s: variant %s gives a different result: not used", point.family,
                               point.shape_class, name)
                continue
            row.candidates.append(CandidateTime(name, ms))
        ok = [c for c in row.candidates if c.ms is not None]
        if not ok:
            continue
        best = min(ok, key=lambda c: c.ms)
        base = next((c for c in ok if c.name == default), None)
        # the default stays unless beaten by more than MARGIN: a tie within timing noise is no reason to switch
        row.winner = best.name if base is None or best.ms < base.ms * (1 - MARGIN) else default
        if base is not None and row.winner != default:      # ... alone, and then in the whole model
            row.winner = _confirm_in_context(model, feeds, point, row, runs)
        cache.store(point.family, point.shape_class, row.winner, {c.name: c.ms for c in ok},
                    {c.name: c.error for c in row.candidates if c.error}, row.in_context_ms)
        changed = True
    report.saved = cache.save() if changed else cache.path.is_file()
    if progress is not None:
        progress(total, total, "")
    return report


def _confirm_in_context(model, feeds: Mapping, point, row: PointReport, runs: int) -> str:
    """``row.winner`` (faster alone than the default) if it is faster in the whole model too (by
    MARGIN, and in every round: InContext.faster), else the default; the times go to
    ``row.in_context_ms`` / ``row.in_context_rounds_ms``."""
    names = [row.default, row.winner]
    try:
        timed = in_context.time_in_context(model, feeds, point.family, point.shape_class, names, runs)
    except Exception as e:      # noqa: BLE001 -- a check that cannot run keeps the default, tuning goes on
        row.in_context_error = f"{type(e).__name__}: {_one_line(e)}"
        logger.warning("%s %s: %s not timed in the model (%s): the default stays", point.family,
                       point.shape_class, row.winner, row.in_context_error)
        return row.default
    times = row.in_context_ms = timed.ms
    row.in_context_rounds_ms = timed.rounds
    if timed.faster(row.winner, row.default, MARGIN):
        return row.winner
    logger.info("%s %s: %s faster alone, not in the model (%.3f vs %.3f ms): the default stays", point.family,
                point.shape_class, row.winner, times[row.winner], times[row.default])
    return row.default


def _one_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return "; ".join(lines)[:300] or type(error).__name__
