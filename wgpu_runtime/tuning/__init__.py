"""Kernel variants chosen per adapter (the autotuner's choice points).

An op's lowering that has several correct ways to run (tile sizes, workgroup sizes, vector
widths, subgroup or not) lists them as :class:`Variant` candidates, best guess first, and asks
:func:`choose` which to use for this device and this shape class. Without a tuned entry the
first candidate wins; the autotuner (``wgpu_runtime.graph.autotune``) times the candidates and
records winners in the persistent cache (``wgpu_runtime.tuning.cache``).

This package is base layer: it imports nothing from ops/graph.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    """One candidate: a short ``name`` (stable: it is what the cache stores) and the values the
    lowering needs to run it (kernel file, template / override constants, tile sizes...)."""
    name: str
    params: tuple = field(default=(), compare=False)   # ((key, value), ...): read with .get()

    def get(self, key, default=None):
        return dict(self.params).get(key, default)


# {family or (family, shape_class): variant name}: what the autotuner (timing candidates) and the
# tests (running every registry case under every variant) force.
_FORCED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("wgpu_runtime_forced_variants", default=None)


@dataclass(frozen=True)
class ChoicePoint:
    """One :func:`choose` call: what was asked, what was picked and why (``source``: "forced",
    "cache" (a tuned winner), "default" (no tuned entry) or "disabled" (tuning off))."""
    family: str
    shape_class: tuple
    candidates: tuple[str, ...]
    chosen: str
    source: str


_DISABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("wgpu_runtime_tuning_disabled", default=False)
_RECORDING: contextvars.ContextVar[list | None] = contextvars.ContextVar("wgpu_runtime_tuning_points", default=None)
_ENABLED = [True]          # set_enabled(): process-wide (the CLI's --no-tune)
ENV_TUNE = "WGPU_RUNTIME_TUNE"   # "0": never use tuned winners (defaults only)


def enabled() -> bool:
    """Whether :func:`choose` uses tuned winners from the cache."""
    return _ENABLED[0] and not _DISABLED.get() and os.environ.get(ENV_TUNE, "1").strip() not in ("0", "false", "no", "off")


def set_enabled(flag: bool) -> None:
    """Use (True, the default) or ignore (False) the tuning cache in this process."""
    _ENABLED[0] = bool(flag)


@contextlib.contextmanager
def disabled():
    """Within the block, :func:`choose` ignores the tuning cache (defaults only)."""
    token = _DISABLED.set(True)
    try:
        yield
    finally:
        _DISABLED.reset(token)


@contextlib.contextmanager
def recording():
    """Collects a :class:`ChoicePoint` for every :func:`choose` call in the block (in this
    thread / context): ``with tuning.recording() as points: model.execute(x)``. A recording
    inside another one hands its points on to the outer one too."""
    points: list[ChoicePoint] = []
    outer = _RECORDING.get()
    token = _RECORDING.set(points)
    try:
        yield points
    finally:
        _RECORDING.reset(token)
        if outer is not None:
            outer.extend(points)


def refused(device) -> dict:
    """The variants passed over on ``device`` because their kernels do not compile there:
    {(family, shape_class, name): why} (:func:`pass_over`; empty for a stand-in device)."""
    return getattr(device, "refused_variants", None) or {}


def pass_over(device, failed, why: str) -> list[ChoicePoint]:
    """After kernels failed to compile on ``device``, ``failed`` holding for each the
    ChoicePoints made while planning its node: for each, the first choice :func:`choose` may
    pass over from now on (not forced, not its only candidate left, not passed over already),
    noted on the device with ``why``. The choices passed over; none when no failure is a
    variant's to avoid (or ``device`` keeps no refusals: a stand-in)."""
    store = getattr(device, "refused_variants", None)
    done: list[ChoicePoint] = []
    if store is None:
        return done
    for choices in failed:
        for p in choices:
            key = (p.family, p.shape_class, p.chosen)
            if p in done:
                break               # another launch of the same choice: passed over already
            if p.source != "forced" and len(p.candidates) > 1 and key not in store:
                store[key] = why
                done.append(p)
                break
    return done


def choose(device, family: str, shape_class: tuple, candidates: list[Variant]) -> Variant:
    """The variant of ``family`` (e.g. "matmul", "conv2d", "depthwise") to run for problems of
    ``shape_class`` (a tuple of small ints / strings bucketing the sizes) on ``device``: a forced
    one, else the tuned winner from the cache when it is still a candidate, else candidates[0];
    candidates whose kernels failed to compile on ``device`` (:func:`pass_over`) are not, unless
    forced (or all of them failed)."""
    if not candidates:
        raise ValueError(f"{family}: no candidate variants")
    shape_class = tuple(shape_class)
    offered = candidates
    if refusals := refused(device):     # kernels that do not compile here (pass_over)
        candidates = [v for v in candidates if (family, shape_class, v.name) not in refusals] or candidates
    chosen, source = candidates[0], "default"
    forced = _FORCED.get()
    name = None if forced is None else forced.get((family, shape_class), forced.get(family))
    picked = next((v for v in offered if v.name == name), None) if name is not None else None
    if picked is not None:
        chosen, source = picked, "forced"
    elif not enabled():
        source = "disabled"
    elif device is not None:
        from . import cache

        name = cache.for_device(device).lookup(family, shape_class)
        picked = next((v for v in candidates if v.name == name), None) if name is not None else None
        if picked is not None:
            chosen, source = picked, "cache"
    points = _RECORDING.get()
    if points is not None:
        points.append(ChoicePoint(family, shape_class, tuple(v.name for v in candidates), chosen.name, source))
    return chosen


@contextlib.contextmanager
def forcing(choices: dict):
    """Within the block, :func:`choose` returns the named variant where it is a candidate:
    ``{"matmul": "tiled_64x64"}`` (every shape class) or ``{("matmul", cls): name}``."""
    token = _FORCED.set({**(_FORCED.get() or {}), **choices})
    try:
        yield
    finally:
        _FORCED.reset(token)
