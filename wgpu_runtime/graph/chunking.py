"""A batch too large for the adapter's storage-binding limit, run in chunks along dim 0.

When planning a batch fails because a tensor would exceed the binding limit
(:class:`~wgpu_runtime.errors.BindingLimitError`), the batch is split into equal chunks of rows
whose every tensor fits, the plan for one chunk runs once per chunk, and the outputs are
concatenated (the last chunk is padded with copies of the last row; those rows are dropped).

This is done only for a *batch-separable* graph: every output row depends on the same input
row alone. That is decided conservatively from two small probe plans, at 1 and at 2 rows: every
tensor computed on the GPU must have the batch as its first dimension in both; every GPU node
must treat rows independently by its op and attributes (:func:`row_wise`); no value the host
folds from the batch size (``Shape(x)[0]``...) may reach a kernel as data; every requested
output is batch-shaped or a constant. Anything else keeps the original error, which then says
why the batch cannot be split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BindingLimitError
from ..memory import nbytes_of
from ..ops import registry
from ..tensor import Tensor
from . import executor
from .plan import DataDependentError, Plan, build_plan

__all__ = ["Chunks", "prepare", "resolve", "row_wise", "run", "separable"]

MAX_DECISIONS = 64      # chunk sizes remembered per model (one per input shapes / outputs)


@dataclass
class Chunks:
    """A batch of ``batch`` rows as ``len(feeds)`` runs of ``plan`` (``rows`` rows each)."""

    plan: Plan
    rows: int
    batch: int
    feeds: list[dict[str, np.ndarray]]      # per chunk: placeholder -> device-layout array
    batched: list[bool]                     # per output: concatenated (True) or a constant

    def join(self, results: list[list[np.ndarray]]) -> list[np.ndarray]:
        """The batch's outputs from each chunk's outputs (padding rows dropped)."""
        outs = []
        for i, batched in enumerate(self.batched):
            if not batched:
                outs.append(results[0][i])
                continue
            first = results[0][i]
            out = np.empty((self.batch, *first.shape[1:]), first.dtype)
            for c, r in enumerate(results):
                rows = out[c * self.rows:(c + 1) * self.rows]
                rows[...] = r[i][:len(rows)]
            outs.append(out)
        return outs


def run(model, feeds, outputs, error: BindingLimitError, on_device: bool = False) -> list:
    """``model.execute(feeds, outputs)`` whose plan failed with ``error``, in chunks (a list of
    outputs; Tensors with ``on_device``). Call it holding the device lock."""
    chunks = prepare(model, *resolve(model, feeds, outputs, error), error)
    outs = chunks.join([executor.run(model.device, chunks.plan, f) for f in chunks.feeds])
    return [Tensor.from_numpy(o, model.device) for o in outs] if on_device else outs


def resolve(model, feeds, outputs, error: BindingLimitError):
    """(resolved inputs, output refs) of an ``execute`` call, as the model checks them."""
    checked = getattr(error, "request", None)      # GraphModel.prepare's, when it raised
    if checked is not None:
        resolved, targets = checked
    else:
        resolved, targets = model._check_feeds(feeds), model._targets(outputs)
    if any(isinstance(v, Tensor) for v, _ in resolved.values()):
        raise _explained(error, "its inputs are device tensors (pass numpy arrays to run it in chunks)")
    return resolved, targets


def prepare(model, resolved: dict[str, tuple[np.ndarray, str]], targets: list[tuple[str, int]],
            error: BindingLimitError) -> Chunks:
    """The chunked run of ``resolved`` (placeholder -> (device array, dtype)) whose plan failed
    with ``error``; raises ``error``, with the reason, when the batch cannot be split."""
    key = (tuple(sorted((k, v.shape, d) for k, (v, d) in resolved.items())), tuple(targets))
    decided = model._chunk_rows.get(key)
    if decided is None:
        decided = _decide(model, resolved, targets, error)
        model._chunk_rows[key] = decided
        while len(model._chunk_rows) > MAX_DECISIONS:
            model._chunk_rows.pop(next(iter(model._chunk_rows)))
    if isinstance(decided, str):
        raise _explained(error, decided)
    rows, batched = decided
    batch = _batch_of(resolved)
    while True:
        try:
            plan = model._plan(_take(resolved, rows), targets)
            break
        except BindingLimitError as e:    # a scratch buffer no probe tensor showed: fewer rows
            if rows == 1:
                raise _explained(e, "one row alone exceeds it") from None
            rows = _even(batch, max(1, min(rows - 1, rows * e.limit // e.nbytes)))
            model._chunk_rows[key] = (rows, batched)
    n = -(-batch // rows)
    feeds = []
    for c in range(n):
        part = {k: v[c * rows:(c + 1) * rows] for k, (v, _) in resolved.items()}
        feeds.append({k: _pad_rows(v, rows) for k, v in part.items()})
    return Chunks(plan, rows, batch, feeds, batched)


def _decide(model, resolved, targets, error) -> tuple[int, list[bool]] | str:
    """(rows per chunk, which outputs are batch-shaped), or why the batch cannot be split."""
    batch = _batch_of(resolved)
    if batch is None:
        return "the inputs do not share a first dimension"
    if batch < 2:
        return "the batch has one row"
    probes = _probes(model, resolved, targets)
    if isinstance(probes, str):
        return probes
    batched = _not_separable(model.graph, targets, *probes)
    if isinstance(batched, str):
        return batched
    per_row = max([nbytes_of(t.shape[1:]) for t in probes[1].tensors.values() if t.value is None] or [4])
    return min(_even(batch, max(1, error.limit // per_row)), batch - 1), batched


def separable(model, resolved: dict[str, tuple[np.ndarray, str]], targets: list[tuple[str, int]]) -> list[bool] | str:
    """Whether calls with inputs shaped as ``resolved`` (placeholder -> (array, dtype); only
    ``shape[1:]`` and dtypes matter) may be stacked along dim 0 and their outputs split again:
    per requested output, whether it is batch-shaped (else a constant); or why not."""
    probes = _probes(model, resolved, targets)
    return probes if isinstance(probes, str) else _not_separable(model.graph, targets, *probes)


def _probes(model, resolved, targets) -> tuple[Plan, Plan] | str:
    """The plans for 1 and 2 rows of ``resolved``'s inputs, or why they say nothing of rows."""
    for name in resolved:
        shape = model.graph.nodes[name].attrs.get("shape")
        if shape is not None and len(shape) and shape[0] >= 0:
            return f"input {name!r} has a fixed first dimension ({shape[0]})"
    probes = []
    for rows in (1, 2):
        feeds = {k: ((rows, *v.shape[1:]), d) for k, (v, d) in resolved.items()}
        try:
            probes.append(build_plan(model, model.graph, feeds, targets))
        except BindingLimitError as e:
            where = f" (node {e.node.name!r}: {e.nbytes} bytes)" if e.node is not None else ""
            return f"one row alone exceeds it{where}"
        except DataDependentError:
            return "the graph has data-dependent shapes"
    return probes[0], probes[1]


def _even(batch: int, most: int) -> int:
    """Rows per chunk for equal chunks of at most ``most`` rows (at most n - 1 padding rows)."""
    n = -(-batch // most)
    return -(-batch // n)


def _not_separable(graph, targets, p1: Plan, p2: Plan) -> list[bool] | str:
    """Per requested output, whether it is batch-shaped; or the reason the graph is not
    batch-separable."""
    tainted: set[tuple[str, int]] = set()     # host values that depend on the batch size
    order = graph.order(list(dict.fromkeys(n for n, _ in targets)))
    used = {r for node in order for r in graph.data_inputs(node)} | set(targets)
    for node in order:
        if node.op in ("Placeholder", "Const"):
            continue
        refs = graph.data_inputs(node)
        outs = [(node.name, i) for i in range(_n_outputs(p2, node.name)) if (node.name, i) in used]
        t1 = [p1.tensors.get(r) for r in [*refs, *outs]]
        t2 = [p2.tensors.get(r) for r in [*refs, *outs]]
        if any(t is None for t in t1 + t2):
            return f"node {node.name!r} ({node.op}) is planned differently at 1 and 2 rows"
        ins = t2[:len(refs)]
        host_outs = all(t.value is not None for t in t2[len(refs):])
        if host_outs:                         # folded on the host (shape arithmetic, constants)
            if any(r in tainted or t.value is None for r, t in zip(refs, ins)):
                tainted.update(outs)
            continue
        op = registry.get(node.op)
        for pos, (r, t) in enumerate(zip(refs, ins)):
            if t.value is not None and r in tainted and not op.is_host_input(pos, len(refs)):
                return f"node {node.name!r} ({node.op}) reads a value computed from the batch size"
        for a, b in zip(t1, t2):
            if a.value is None and (not a.shape or a.shape[0] != 1 or b.shape[0] != 2):
                return f"node {node.name!r} ({node.op}) has a tensor whose first dimension is not the batch"
        why = row_wise(node, op, ins, t2[len(refs):])
        if why:
            return f"node {node.name!r} ({node.op}) {why}"
    batched = []
    for ref in targets:
        t = p2.tensors[ref]
        if t.value is None:
            batched.append(True)
        elif ref in tainted:
            return f"output {ref[0]}:{ref[1]} is computed from the batch size"
        else:
            batched.append(False)
    return batched


def row_wise(node, op: registry.OpDef, ins: list, outs: list) -> str | None:
    """None when ``node`` (op ``op``, planned inputs ``ins`` / outputs ``outs`` whose device
    tensors all have the batch as dim 0) computes each output row from the same input row
    alone; else why not: the op's ``rows`` rule in the registry (ops/rows.py)."""
    return op.row_wise(node.op, node.attrs, ins, outs)


def _n_outputs(plan: Plan, name: str) -> int:
    n = 0
    while (name, n) in plan.tensors:
        n += 1
    return n


def _batch_of(resolved) -> int | None:
    dims = {v.shape[0] if v.ndim else None for v, _ in resolved.values()}
    return dims.pop() if len(dims) == 1 and None not in dims else None


def _take(resolved, rows: int):
    return {k: (v[:rows], d) for k, (v, d) in resolved.items()}


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    if a.shape[0] == rows:
        return np.ascontiguousarray(a)
    return np.concatenate([a, np.repeat(a[-1:], rows - a.shape[0], axis=0)], axis=0)


def _explained(e: BindingLimitError, reason: str) -> BindingLimitError:
    return BindingLimitError(e.nbytes, e.limit, e.node, detail=f"; the batch cannot be split into chunks: {reason}")
