"""Dynamic batching: concurrent calls of one model stacked into one batch (opt-in).

``GraphModel.enable_dynamic_batching(max_batch_size, max_delay_ms)`` starts one worker thread per
model. A call from any thread or coroutine whose inputs are numpy arrays is checked in the
caller's thread (a bad input raises there), then queued; the worker takes the oldest call and
every queued call with the same output names and the same input shapes past dim 0 and dtypes,
up to ``max_batch_size`` rows, waiting at most ``max_delay_ms`` after the oldest call arrived
for more to come; it runs them as one batch and gives each caller its own rows.

Only a *batch-separable* graph is batched (every output row depends on the same input row
alone; the analysis is graph/chunking.py's, which also splits batches over the binding limit).
Calls that cannot be batched run alone, as without batching: device-tensor inputs or
``on_device`` outputs, inputs without a shared first dimension, more rows than
``max_batch_size``, shapes for which the graph is not separable (warned once per shape).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..dtypes import STRING, device_dtype
from ..errors import DisposedError, GraphError
from ..tensor import Tensor
from . import chunking, executor
from .plan import DataDependentError

log = logging.getLogger("wgpu_runtime")

__all__ = ["Batcher", "RUN_ALONE"]

RUN_ALONE = object()    # a future's result: run this call alone (the graph needs the dynamic executor)

IDLE_S = 5.0            # the worker thread ends after this long without calls
MAX_DECISIONS = 64      # separability decisions remembered (one per input shapes / outputs)


@dataclass(eq=False)     # compared by identity (the queue removes calls by identity)
class _Call:
    key: tuple                                  # (output refs, (placeholder, shape[1:], dtype)...)
    resolved: dict[str, tuple[np.ndarray, str]]  # placeholder -> (device-layout array, dtype)
    targets: list[tuple[str, int]]
    rows: int
    batched: list[bool]                          # per output: batch-shaped (split) or a constant (shared)
    arrived: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


class Batcher:
    """The dynamic batcher of one GraphModel (see the module docstring)."""

    def __init__(self, model, max_batch_size: int, max_delay_ms: float):
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 2:
            raise ValueError(f"max_batch_size must be an integer >= 2, got {max_batch_size!r}")
        if isinstance(max_delay_ms, bool) or not isinstance(max_delay_ms, (int, float)) or not 0 <= max_delay_ms <= 10_000:
            raise ValueError(f"max_delay_ms must be a number of milliseconds from 0 to 10000, got {max_delay_ms!r}")
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_delay_ms = float(max_delay_ms)
        self.stats = {"calls": 0, "batches": 0, "batched_calls": 0, "alone": 0}
        self._decisions: dict[tuple, list[bool] | str] = {}
        self._pending: deque[_Call] = deque()
        self._cond = threading.Condition()
        self._closed = self._draining = False
        self._thread: threading.Thread | None = None
        self._check_model()

    # -- callers ---------------------------------------------------------------------------
    def offer(self, feeds, outputs) -> Future | None:
        """A future of ``execute(feeds, outputs)``'s list of arrays (or of RUN_ALONE), or None
        when this call must run alone. Raises the call's input errors here, in the caller's thread."""
        model = self.model
        if any(isinstance(v, Tensor) for v in feeds.values()):
            return None
        resolved, targets = model._check_feeds(feeds), model._targets(outputs)
        rows = _rows_of(resolved)
        if rows is None or rows > self.max_batch_size or model._dynamic is not None:
            return None
        key = (tuple(targets), tuple(sorted((k, v.shape[1:], d) for k, (v, d) in resolved.items())))
        batched = self._decide(key, resolved, targets)
        if isinstance(batched, str):
            return None
        call = _Call(key, resolved, targets, rows, batched)
        with self._cond:
            if self._closed:
                raise DisposedError("this model has been disposed")
            if self._draining:
                return None
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="wgpu-runtime-batcher", daemon=True)
                self._thread.start()
            self._pending.append(call)
            self.stats["calls"] += 1
            self._cond.notify()
        return call.future

    def drain(self) -> None:
        """Stop taking calls; the worker stops once the queued ones have run."""
        with self._cond:
            self._draining = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the worker after the calls already taken; queued calls get DisposedError."""
        with self._cond:
            self._closed = True
            left = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for call in left:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(DisposedError("the model was disposed before this call ran"))

    # -- the worker --------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            self._loop()
        except BaseException as e:    # a bug here must not leave callers waiting forever
            with self._cond:
                left = list(self._pending)
                self._pending.clear()
                self._thread = None
            for call in left:
                if call.future.set_running_or_notify_cancel():
                    call.future.set_exception(e)
            raise

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            batch = [c for c in batch if c.future.set_running_or_notify_cancel()]    # cancelled: dropped
            try:
                if batch:
                    self._run(batch)
            except BaseException as e:    # never leave a caller waiting
                for call in batch:
                    if not call.future.done():
                        call.future.set_exception(e)

    def _next_batch(self) -> list[_Call] | None:
        with self._cond:
            while not self._pending and not (self._closed or self._draining):
                if not self._cond.wait(IDLE_S) and not self._pending:
                    break
            if not self._pending:       # closed, drained or idle: the thread ends (a new call starts
                self._thread = None     # another), so a model dropped without dispose() can be freed
                return None
            first = self._pending[0]
            deadline = first.arrived + self.max_delay_ms / 1000
            while True:
                batch, rows = [], 0
                for call in self._pending:
                    if call.key == first.key and rows + call.rows <= self.max_batch_size:
                        batch.append(call)
                        rows += call.rows
                wait = deadline - time.monotonic()
                if rows >= self.max_batch_size or wait <= 0 or self._closed or self._draining:
                    break
                self._cond.wait(wait)
            if self._closed:            # close() has failed the queued calls
                return None
            for call in batch:
                self._pending.remove(call)
            return batch

    def _run(self, batch: list[_Call]) -> None:
        if len(batch) == 1:
            self.stats["alone"] += 1
            return _settle(batch[0], lambda: _execute(self.model, batch[0].resolved, batch[0].targets))
        first = batch[0]
        resolved = {k: (np.concatenate([c.resolved[k][0] for c in batch]), d) for k, (_, d) in first.resolved.items()}
        try:
            outs = _execute(self.model, resolved, first.targets)
            if outs is RUN_ALONE:
                raise DataDependentError("data-dependent")
        except BaseException:     # each call alone, so each caller gets its own result or error
            for call in batch:
                _settle(call, lambda c=call: _execute(self.model, c.resolved, c.targets))
            return
        self.stats["batches"] += 1
        self.stats["batched_calls"] += len(batch)
        start = 0
        for call in batch:
            stop = start + call.rows
            if not call.future.done():
                call.future.set_result([o[start:stop] if b else o for o, b in zip(outs, call.batched)])
            start = stop

    # -- decisions ---------------------------------------------------------------------------
    def _decide(self, key, resolved, targets) -> list[bool] | str:
        decided = self._decisions.get(key)
        if decided is None:
            with self.model.device.lock:
                decided = chunking.separable(self.model, resolved, targets)
            if isinstance(decided, str):
                log.warning("dynamic batching: calls with these input shapes run one by one: %s", decided)
            self._decisions[key] = decided
            while len(self._decisions) > MAX_DECISIONS:
                self._decisions.pop(next(iter(self._decisions)))
        return decided

    def _check_model(self) -> None:
        """GraphError now when no call could ever be batched (judged from the model's input specs
        when only their first dimension is free)."""
        model = self.model
        if model._dynamic is not None:
            raise GraphError("dynamic batching needs a model that runs as one prepared plan; this one "
                             "has control flow or data-dependent shapes")
        resolved = {}
        for spec in model.inputs:
            node = model._placeholder_of(spec.name)
            shape = list(spec.shape or [])
            if node is None or not shape:
                return
            if shape[0] >= 0:
                raise GraphError(f"dynamic batching needs a free batch dimension; input {spec.name!r} has "
                                 f"shape [{', '.join('?' if d < 0 else str(d) for d in shape)}]")
            if any(d < 0 for d in shape[1:]) or spec.dtype == STRING:
                return                  # decided per call, from the real shapes
            dtype = model.graph.nodes[node].attrs.get("dtype") or "float32"
            resolved[node] = (np.zeros([1, *shape[1:]], np.float32), device_dtype(dtype))
        targets = model._targets(None)
        key = (tuple(targets), tuple(sorted((k, v.shape[1:], d) for k, (v, d) in resolved.items())))
        why = self._decide(key, resolved, targets)
        if isinstance(why, str):
            raise GraphError(f"dynamic batching needs a batch-separable model: {why}")


def _execute(model, resolved, targets) -> list[np.ndarray]:
    """One run of checked inputs, as ``execute`` runs them (chunked over the binding limit), or
    RUN_ALONE when the graph needs the dynamic executor."""
    with model.device.lock:
        model._check_alive()
        try:
            sub, outs = model._submit_checked(resolved, targets)
        except DataDependentError:      # the caller runs it alone, on the dynamic executor
            return RUN_ALONE
    return outs if sub is None else executor.wait(model.device, sub)


def _settle(call: _Call, run) -> None:
    try:
        result = run()
    except BaseException as e:    # the caller's error, raised in the caller's thread
        call.future.set_exception(e)
    else:
        call.future.set_result(result)


def _rows_of(resolved) -> int | None:
    dims = set()
    for v, d in resolved.values():
        if d == STRING or v.ndim == 0:
            return None
        dims.add(v.shape[0])
    return dims.pop() if len(dims) == 1 else None
