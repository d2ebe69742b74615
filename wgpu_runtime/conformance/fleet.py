"""Conformance on every adapter of every node of a Ray cluster (``conformance --ray auto|ADDRESS``).

One task per node lists its adapters; then one task per (node, adapter), pinned to its node
(NodeAffinitySchedulingStrategy), runs today's conformance for that adapter (run.run_adapter).
The columns merge into one Run: the same table, JSON (``adapters`` / ``summary``) and reports,
each column naming its node. A node that dies, has no adapter, or does not answer within
``--ray-timeout`` is a failing column saying so; the exit status is then 1. Ray attaches the
driver to a raylet of its own host, and the run lives as long as that node: the driver names it
when it starts (an info line, ``-v``) and in the report's machine line.
"""
from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .results import AdapterResult, Run

logger = logging.getLogger(__name__)


@dataclass
class NodeAdapterResult(AdapterResult):
    """An AdapterResult of one node of a cluster: which node, and the adapter's driver."""

    node_id: str = ""
    node_ip: str = ""
    host: str = ""
    driver: str = ""
    wgpu_version: str = ""

    @property
    def label(self) -> str:
        return f"node {self.node_id[:8]}: {super().label}"

    @property
    def column_notes(self) -> list[str]:
        """Lines under the column's name in reports: node, driver, wgpu version."""
        return [f"node {self.node_id[:12]} ({self.host or self.node_ip})",
                f"driver {self.driver or '-'}", f"wgpu {self.wgpu_version or '-'}"]

    def to_dict(self) -> dict:
        return {**super().to_dict(), "node": {"id": self.node_id, "ip": self.node_ip, "host": self.host},
                "driver": self.driver, "wgpu_version": self.wgpu_version}


def _wgpu_version() -> str:
    try:
        from importlib.metadata import version

        return version("wgpu")
    except Exception:  # noqa: BLE001 -- a version string is best effort
        return "?"


def node_adapters(query: str | None) -> dict:
    """On a node: its host and the adapters conformance would run on there (run.select_adapters)."""
    import socket

    from ..errors import AdapterError
    from .run import select_adapters

    found = []
    error = ""
    try:
        for a in select_adapters(query):
            info = a.info
            found.append({"name": _describe(a), "backend": str(info.get("backend_type", "?")),
                          "driver": str(info.get("description", ""))})
    except AdapterError as e:
        error = str(e)
    return {"host": socket.gethostname(), "adapters": found, "error": error, "wgpu_version": _wgpu_version()}


def _describe(adapter) -> str:
    from ..device import describe

    return describe(adapter)


def run_column(node: dict, adapter: dict, ops: list[str], models: list[str], wgpu_version: str) -> NodeAdapterResult:
    """On a node: the op cases and models on one of its adapters, as a column of the report."""
    from . import op_cases
    from .models import ModelUnderTest
    from .run import run_adapter, select_adapters

    result = _column(node, adapter, wgpu_version)
    chosen = [a for a in select_adapters("all") if _describe(a) == adapter["name"]]
    if not chosen:
        result.error = "the adapter is gone from this node"
        return result
    cases = op_cases.case_list(ops)
    try:
        loaded = [ModelUnderTest(p) for p in models]
    except Exception as e:  # noqa: BLE001 -- a model missing on this node is this column's failure
        result.error = f"cannot load a model on this node: {type(e).__name__}: {e}"
        return result
    done = run_adapter(chosen[0], cases, loaded, lambda: None, lambda text: None)
    result.cases, result.models, result.error, result.seconds = done.cases, done.models, done.error, done.seconds
    return result


def _column(node: dict, adapter: dict | None, wgpu_version: str = "", error: str = "") -> NodeAdapterResult:
    return NodeAdapterResult(adapter["name"] if adapter else "no adapter", adapter["backend"] if adapter else "-",
                             error=error, node_id=node["NodeID"], node_ip=node.get("NodeManagerAddress", ""),
                             host=node.get("NodeManagerHostname", ""), driver=adapter["driver"] if adapter else "",
                             wgpu_version=wgpu_version)


def _failure(e: BaseException) -> str:
    kind = type(e).__name__
    if "NodeDied" in kind or "WorkerCrashed" in kind or "Unschedulable" in kind:
        return f"the node died or left the cluster ({kind})"
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return f"{kind}: {lines[-1] if lines else ''}"


def _gather(ray, refs: dict, deadline: float) -> dict:
    """ref -> (value, None) or (None, failure text); what is not done by ``deadline`` is cancelled."""
    out = {}
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        for ref in ready:
            try:
                out[ref] = (ray.get(ref), None)
            except Exception as e:  # noqa: BLE001 -- a task that failed is a column saying why
                out[ref] = (None, _failure(e))
    for ref in pending:
        ray.cancel(ref, force=True)
        out[ref] = (None, "no answer before --ray-timeout: the node hung or is too slow")
    return out


def main(args) -> int:
    from ..batch.cluster import cluster_nodes, session
    from .models import ModelUnderTest
    from .run import check_args, emit, tolerance_record

    patterns, ops = check_args(args)
    models = [str(Path(p).resolve()) for p in args.models]
    for p in models:
        ModelUnderTest(p)                       # a model that cannot load here is a user error
    with session(args.ray) as (ray, where):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        deadline = time.monotonic() + args.ray_timeout
        nodes = [n for n in cluster_nodes(ray) if n.get("Alive")]
        driver_node = ray.get_runtime_context().get_node_id()
        logger.info("conformance on %d Ray node%s; this driver is attached to node %s",
                    len(nodes), "s" if len(nodes) != 1 else "", driver_node)

        def on(node, fn):        # a task pinned to this node; never retried elsewhere
            return ray.remote(fn).options(num_cpus=0, max_retries=0, scheduling_strategy=
                                          NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))

        listing = {on(n, node_adapters).remote(args.adapter): n for n in nodes}
        found = _gather(ray, listing, deadline)
        columns: list = []              # a NodeAdapterResult, or a ref whose result is one
        tasks = {}
        for ref, node in listing.items():
            value, failure = found[ref]
            if failure:
                columns.append(_column(node, None, error=f"cannot list adapters: {failure}"))
                continue
            node = {**node, "NodeManagerHostname": value["host"]}
            if not value["adapters"]:
                columns.append(_column(node, None, value["wgpu_version"],
                                       value["error"] or "no WebGPU adapter on this node"))
            for adapter in value["adapters"]:
                ref2 = on(node, run_column).remote(node, adapter, ops, models, value["wgpu_version"])
                tasks[ref2] = (node, adapter, value["wgpu_version"])
                columns.append(ref2)
        done = _gather(ray, tasks, deadline)
        results = []
        for c in columns:
            if isinstance(c, AdapterResult):
                results.append(c)
                continue
            value, failure = done[c]
            results.append(value if failure is None else _column(*tasks[c][:2], tasks[c][2], error=failure))
    run = Run(results, models, patterns, tolerance_record(), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              f"{len(nodes)} node{'s' if len(nodes) != 1 else ''} of {where}; driver on {platform.node()} "
              f"(node {driver_node[:12]}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)")
    return emit(run, args)
