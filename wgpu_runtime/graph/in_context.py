"""Time kernel variants in their model: the autotuner's check of a one-node winner.

A candidate timed alone (a one-node model, graph/autotune.py) can mislead: on lavapipe, six of
MobileNetV2 224's shape classes ran "regblock" 10-35 % faster than the default "texture" kernel
alone, yet the same choices in the whole plan measured 0.99-2.35x the default's time there
(docs/benchmarks.md, seventh session of 2026-12-05). What counts is the plan a user runs, so the
autotuner confirms a winner in it before storing it: :func:`time_in_context` builds the model's
whole plan once per candidate (only that shape class forced; every other class as it would run)
and times the plans alternately.

With timestamp queries, a plan's time is the sum, over the steps that are not also in the other
plan (same node, kernel, grid and uniforms: the variant's dispatches and its texture copies), of
each step's minimum GPU time over every run: steps both plans share cost the same and would only
add their noise. Without timestamps: the median wall time of whole runs. A candidate counts as
faster only if it is faster over all the runs by the margin and faster in every round
(:meth:`InContext.faster`): on this project's shared machine the same A/B went either way by
10-15 % from one minute to the next.

Building those plans uploads the candidates' repacked weights into the model (weight buffers
and textures, by key); :func:`scratch_weights` removes what was added once the timing is done, so
the model keeps only what its own plans use.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from .. import tuning
from . import executor
from .plan import Planner

ROUNDS = 3        # alternations of the candidates' plans (each `runs` runs)


def plan_request(model, feeds: Mapping) -> tuple[dict, list, dict]:
    """(input shapes and dtypes, every output, the feeds in device layout): what a planner of
    ``model`` builds a whole plan for (``Planner.build(model.graph, shapes, targets)``)."""
    resolved = model._check_feeds(feeds)
    targets = [model._resolve_output(s.name) for s in model.outputs]
    shapes = {k: (v.shape, d) for k, (v, d) in resolved.items()}
    return shapes, targets, {k: v for k, (v, _) in resolved.items()}


def whole_plan(model, feeds: Mapping, choices: dict | None = None):
    """(a new plan of ``model`` for ``feeds`` with ``choices`` forced (tuning.forcing), the feeds
    in device layout). The plan is not the model's cached one; drop it when done."""
    shapes, targets, arrays = plan_request(model, feeds)
    with model.device.lock, tuning.forcing(choices or {}):
        plan = Planner(model, model.device).build(model.graph, shapes, targets)
    return plan, arrays


def step_signature(step) -> tuple:
    """What makes two plans' steps the same work: node, kernel, grid and uniform bytes."""
    return step.node, step.kernel, tuple(step.grid or ()), bytes(step.params or b"")


def own_steps(plan, other) -> list[int]:
    """Indices of ``plan``'s steps that ``other`` does not have (as a multiset of signatures)."""
    mine, theirs = Counter(), Counter(step_signature(s) for s in other.steps)
    out = []
    for i, s in enumerate(plan.steps):
        sig = step_signature(s)
        mine[sig] += 1
        if mine[sig] > theirs[sig]:
            out.append(i)
    return out


@dataclass
class InContext:
    """What :func:`time_in_context` measured: ``ms`` per variant over every run, ``rounds`` the
    same per round (alternations), ``timer`` "gpu" or "wall"."""
    ms: dict[str, float]
    rounds: dict[str, list[float]]
    timer: str

    def faster(self, name: str, than: str, margin: float) -> bool:
        """Whether ``name`` beat ``than`` by more than ``margin`` over all the runs, and in every
        round: a round that went the other way means the machine's drift is as big as the gain."""
        return (self.ms[name] < self.ms[than] * (1 - margin)
                and all(a < b for a, b in zip(self.rounds[name], self.rounds[than])))


def time_in_context(model, feeds: Mapping, family: str, shape_class: tuple, names: list[str],
                    runs: int = 5, rounds: int = ROUNDS) -> InContext:
    """The times of the whole plan of ``model`` with shape class ``(family, shape_class)``
    forced to each variant of ``names`` (two, usually: the default and the one-node winner),
    timed alternately for ``rounds`` rounds of ``runs`` runs each. Timer ``"gpu"``: the steps
    each plan does not share with the others (module docstring); ``"wall"``: median wall ms of
    whole runs."""
    device = model.device
    with scratch_weights(model):
        plans = {}
        for name in names:
            plans[name], arrays = whole_plan(model, feeds, {(family, tuple(shape_class)): name})
        gpu = device.has_timestamps and all(p.steps for p in plans.values())
        if gpu:
            own = {n: sorted(set().union(*(own_steps(p, q) for m, q in plans.items() if m != n)))
                   for n, p in plans.items()}
        best: dict[str, list] = {n: [] for n in names}          # per step, minimum over every run
        per_round: dict[str, list] = {n: [] for n in names}
        walls: dict[str, list] = {n: [] for n in names}
        for _ in range(max(1, rounds)):
            for name, plan in plans.items():
                this, wall = [], []                     # this round's per-step minima / wall times
                for _ in range(max(1, runs)):
                    if gpu:
                        _, ms = executor.run_profiled(device, plan, arrays)
                        this = ms if not this else [min(a, b) for a, b in zip(this, ms)]
                    else:
                        t0 = time.perf_counter()
                        executor.run(device, plan, arrays)
                        wall.append((time.perf_counter() - t0) * 1e3)
                if gpu:
                    best[name] = this if not best[name] else [min(a, b) for a, b in zip(best[name], this)]
                    per_round[name].append(sum(this[i] for i in own[name]))
                else:
                    walls[name] += wall
                    per_round[name].append(statistics.median(wall))
        del plans
        device.wait_idle()
    if gpu:
        return InContext({n: sum(best[n][i] for i in own[n]) for n in names}, per_round, "gpu")
    return InContext({n: statistics.median(walls[n]) for n in names}, per_round, "wall")


@contextlib.contextmanager
def scratch_weights(model):
    """Within the block, weight buffers and textures the model uploads (a plan of another variant
    repacks its weights) are scratch: on exit they are destroyed and forgotten (the GPU idle
    first). The plans that bound them must be dropped by then."""
    buffers, textures = set(model._buffers), set(model._textures)
    try:
        yield
    finally:
        added = [model._buffers.pop(k) for k in list(model._buffers) if k not in buffers]
        added += [model._textures.pop(k) for k in list(model._textures) if k not in textures]
        if added:
            model.device.wait_idle()
            for b in added:
                if b.gpu is not None:
                    b.gpu.destroy()
