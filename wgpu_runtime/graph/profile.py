"""Seeing inside a graph model: where one inference spends its time, and what it holds in
device memory.

:func:`profile` runs one inference with a timestamp query around every dispatch
(``executor.run_profiled``) and times the host phases (plan, write inputs, encode, submit, read
back: the wait for the GPU included). The :class:`Profile` shows GPU time per node and per op as a table, as a dict and as
a Chrome-trace / Perfetto JSON file. :func:`node_times` / :func:`op_times` are the one place
per-dispatch times are summed (``bench`` uses them too). :func:`memory_info` reports weights,
plans' activations, inputs and staging buffers.
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import BindingLimitError
from ..ops.launch import COPY_TO_TEXTURE
from ..textures import Tex
from . import chunking, executor

__all__ = ["Profile", "memory_info", "node_times", "op_times", "profile"]

NO_TIMESTAMPS = "this adapter has no timestamp queries: host times only, no GPU time per node"


def node_times(steps, step_ms) -> list[dict]:
    """[{node, op, dispatches, gpu_ms}] in plan order, summing a node's steps: ``dispatches``
    counts its compute dispatches, ``gpu_ms`` includes its copies into texture operands."""
    by_node: dict[str, dict] = {}
    for st, ms in zip(steps, step_ms):
        row = by_node.setdefault(st.node, {"node": st.node, "op": st.op, "dispatches": 0, "gpu_ms": 0.0})
        row["dispatches"] += st.kernel != COPY_TO_TEXTURE
        row["gpu_ms"] += ms
    return list(by_node.values())


def op_times(nodes: list[dict]) -> list[dict]:
    """[{op, count (dispatches), gpu_ms, share}] from :func:`node_times` rows, slowest first."""
    by_op: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for row in nodes:
        by_op[row["op"]][0] += row["dispatches"]
        by_op[row["op"]][1] += row["gpu_ms"]
    total = sum(ms for _, ms in by_op.values())
    return sorted(({"op": op, "count": n, "gpu_ms": ms, "share": ms / total if total else 0.0}
                   for op, (n, ms) in by_op.items()), key=lambda r: -r["gpu_ms"])


@dataclass
class Profile:
    """One profiled inference. ``dispatches``: per GPU dispatch {node, op, kernel, chunk,
    start_ms, gpu_ms} (start on the GPU clock, from the first dispatch; empty without timestamp
    queries); ``host``: [{phase, chunk, start_ms, ms}] from the call's start; ``note``: what is
    missing and why."""

    adapter: str
    dispatches: list[dict] = field(default_factory=list)
    host: list[dict] = field(default_factory=list)
    chunks: int = 1
    note: str = ""

    @property
    def nodes(self) -> list[dict]:
        """GPU time per node ({node, op, dispatches, gpu_ms}, plan order; chunks summed)."""
        rows = node_times([_Step(d["node"], d["op"], d["kernel"]) for d in self.dispatches],
                          [d["gpu_ms"] for d in self.dispatches])
        if self.chunks > 1:         # the same steps once per chunk: count a node's dispatches per run
            for r in rows:
                r["dispatches"] //= self.chunks
        return rows

    @property
    def ops(self) -> list[dict]:
        """GPU time per op ({op, count, gpu_ms, share}), slowest first."""
        return op_times(self.nodes)

    @property
    def gpu_ms(self) -> float | None:
        """Sum of the dispatches' GPU times (None without timestamp queries)."""
        return sum(d["gpu_ms"] for d in self.dispatches) if self.dispatches else None

    @property
    def host_ms(self) -> dict[str, float]:
        """Host milliseconds per phase (chunks summed)."""
        out: dict[str, float] = {}
        for h in self.host:
            out[h["phase"]] = out.get(h["phase"], 0.0) + h["ms"]
        return out

    def to_dict(self) -> dict:
        """Everything as plain JSON types."""
        return {"adapter": self.adapter, "chunks": self.chunks, "note": self.note, "gpu_ms": self.gpu_ms,
                "host_ms": self.host_ms, "nodes": self.nodes, "ops": self.ops,
                "dispatches": [dict(d) for d in self.dispatches], "host": [dict(h) for h in self.host]}

    def table(self, top: int | None = None) -> str:
        """GPU time per node (the ``top`` slowest, default all, in plan order) and host time per
        phase, as plain text."""
        lines = [f"profile on {self.adapter}" + (f" ({self.chunks} chunks)" if self.chunks > 1 else "")]
        if self.note:
            lines.append(f"note: {self.note}")
        nodes = self.nodes
        if nodes:
            total = self.gpu_ms or 0.0
            shown = nodes if top is None else sorted(sorted(nodes, key=lambda r: -r["gpu_ms"])[:top],
                                                    key=nodes.index)
            width = max(len("node"), *(len(r["node"]) for r in shown))
            opw = max(len("op"), *(len(r["op"]) for r in shown))
            lines.append(f"{'node':<{width}}  {'op':<{opw}}  dispatches  gpu ms    share")
            for r in shown:
                share = 100 * r["gpu_ms"] / total if total else 0.0
                lines.append(f"{r['node']:<{width}}  {r['op']:<{opw}}  {r['dispatches']:>10}  "
                             f"{r['gpu_ms']:>7.3f}  {share:>6.1f}%")
            if top is not None and top < len(nodes):
                lines.append(f"({len(nodes) - top} more nodes)")
            n = sum(d["kernel"] != COPY_TO_TEXTURE for d in self.dispatches)
            lines.append(f"GPU total: {total:.3f} ms over {n} dispatches")
        lines.append("host: " + ", ".join(f"{k} {v:.3f} ms" for k, v in self.host_ms.items()))
        return "\n".join(lines)

    __str__ = table

    def trace(self) -> dict:
        """The Chrome-trace / Perfetto JSON object: complete events (``ph: "X"``, microseconds),
        host phases on one track, GPU dispatches on another (the GPU clock aligned so that the
        first dispatch of a run starts when its submit does; the gaps between dispatches are the
        GPU's own)."""
        pid = 1
        events = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": f"wgpu-runtime: {self.adapter}"}},
                  {"name": "thread_name", "ph": "M", "pid": pid, "tid": 1, "args": {"name": "host"}},
                  {"name": "thread_name", "ph": "M", "pid": pid, "tid": 2, "args": {"name": "GPU"}}]
        for h in self.host:
            events.append({"name": h["phase"], "cat": "host", "ph": "X", "pid": pid, "tid": 1,
                           "ts": 1e3 * h["start_ms"], "dur": 1e3 * h["ms"], "args": {"chunk": h["chunk"]}})
        submits = {h["chunk"]: h["start_ms"] for h in self.host if h["phase"] == "submit"}
        for d in self.dispatches:
            events.append({"name": d["node"], "cat": "gpu", "ph": "X", "pid": pid, "tid": 2,
                           "ts": 1e3 * (submits.get(d["chunk"], 0.0) + d["start_ms"]), "dur": 1e3 * d["gpu_ms"],
                           "args": {"op": d["op"], "kernel": d["kernel"], "chunk": d["chunk"]}})
        return {"traceEvents": events, "displayTimeUnit": "ms",
                "otherData": {"adapter": self.adapter, "note": self.note}}

    def save_trace(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`trace` as JSON (open in ui.perfetto.dev or chrome://tracing)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.trace(), f)


@dataclass
class _Step:
    node: str
    op: str
    kernel: str


def profile(model, feeds, outputs=None, warmup: bool = True) -> Profile:
    """Profile one ``model.execute(feeds, outputs)``: host phases, and GPU time per dispatch
    where the adapter has timestamp queries. A batch run in chunks is profiled chunk by chunk;
    a model on the dynamic executor gets its whole call timed, with a note. ``feeds``: as
    ``execute``'s, or as ``predict``'s ``x``. ``warmup``: first run it once unrecorded, so that
    one-time costs (planning, shader compiles, the driver's timestamp set-up) stay out."""
    if not isinstance(feeds, Mapping):
        feeds = model._predict_feeds(feeds)
    dev = model.device
    prof = Profile(dev.name)
    start = time.perf_counter()

    def phase(name, t0, seconds, chunk=0):
        prof.host.append({"phase": name, "chunk": chunk, "start_ms": 1e3 * (t0 - start), "ms": 1e3 * seconds})

    if model.is_dynamic:
        model.execute(feeds, outputs)
        phase("execute (dynamic executor)", start, time.perf_counter() - start)
        prof.note = "the model runs on the dynamic executor (control flow): whole call timed, no per-node times"
        return prof
    with dev.lock:
        if warmup:
            plan, runs = _runs(model, feeds, outputs)
            executor.run_profiled(dev, plan, runs[0])
            start = time.perf_counter()
        plan, runs = _runs(model, feeds, outputs)
        phase("plan", start, time.perf_counter() - start)
        prof.chunks = len(runs)
        for c, arrays in enumerate(runs):
            trace: dict = {}
            _, step_ms = executor.run_profiled(dev, plan, arrays, trace)
            for name, t0, seconds in trace["phases"]:
                phase(name, t0, seconds, c)
            begins = trace["gpu_begin_ns"]
            for st, ms, b in zip(plan.steps, step_ms, begins):
                prof.dispatches.append({"node": st.node, "op": st.op, "kernel": st.kernel, "chunk": c,
                                        "start_ms": (b - begins[0]) / 1e6, "gpu_ms": ms})
    if not dev.has_timestamps:
        prof.note = NO_TIMESTAMPS
    return prof


def _runs(model, feeds, outputs):
    """(plan, the device feeds of each run): one run, or one per chunk of a batch over the
    binding limit (graph/chunking.py)."""
    try:
        plan, arrays = model.prepare(feeds, outputs)
        return plan, [arrays]
    except BindingLimitError as e:
        chunks = chunking.prepare(model, *chunking.resolve(model, feeds, outputs, e), e)
        return chunks.plan, chunks.feeds


def memory_info(model) -> dict:
    """Device memory a model holds, in bytes: ``weights``; per cached plan (``plans``: its input
    shapes, ``activation_bytes`` (peak: the liveness-pooled temp buffers), ``pooled_buffers``,
    ``input_bytes``, ``const_bytes``, ``staging_bytes``, ``texture_bytes``: the scratch texture
    the texture kernel variants copy activations into); ``peak_activation_bytes`` (the largest
    plan's), totals over plans, the plan cache size, the chunk sizes chosen for batches over
    the binding limit, and ``device_pool_idle_bytes``: freed tensor buffers the model's device
    keeps for reuse (buffer_pool.py, shared by the device's models)."""
    plans = []
    for key, plan in model._plans.items():
        temps = {id(b.root.gpu): b.root.gpu.size for st in plan.steps for b in st.bindings
                 if b.kind == "temp" and b.root.gpu is not None}
        staging = [plan.staging, *getattr(plan, "staging_ring", [])] if plan.staging is not None else []
        scratch = {id(b.scratch): b.scratch.nbytes for st in plan.steps for b in st.bindings
                   if isinstance(b, Tex) and b.scratch is not None}
        plans.append({"inputs": {name: list(shape) for name, shape, _ in key[0]},
                      "outputs": [f"{n}:{i}" for n, i in key[1]],
                      "activation_bytes": plan.temp_bytes, "pooled_buffers": len(temps),
                      "input_bytes": sum(b.nbytes for b in plan.inputs.values()),
                      "const_bytes": plan.const_bytes,
                      "staging_bytes": sum(s.size for s in {id(s): s for s in staging}.values()),
                      "texture_bytes": sum(scratch.values())})
    total = lambda k: sum(p[k] for p in plans)   # noqa: E731
    chunked = [{"inputs": {name: list(shape) for name, shape, _ in key[0]}, "rows_per_chunk": d[0]}
               for key, d in model._chunk_rows.items() if not isinstance(d, str)]
    return {"weights_bytes": model.weight_bytes, "plans": plans,
            "peak_activation_bytes": max((p["activation_bytes"] for p in plans), default=0),
            "activation_bytes": total("activation_bytes"), "pooled_buffers": total("pooled_buffers"),
            "input_bytes": total("input_bytes"), "const_bytes": total("const_bytes"),
            "staging_bytes": total("staging_bytes"), "texture_bytes": total("texture_bytes"),
            "plan_cache_size": model.plan_cache_size,
            "chunked": chunked, "max_binding_bytes": model.device.max_binding_bytes,
            "device_pool_idle_bytes": model.device.pool.idle_bytes}
