"""The static island of a graph the dynamic executor runs: the part the static planner can run.

A detector exported with its post-processing in a v1 while loop (NMS over each image, say) runs
on the dynamic executor, node by node in Python, backbone included: hundreds of node executions
a call where the backbone alone would be one prepared plan. The island is every node of the main
graph that (with all its inputs, data and control) needs nothing dynamic: no frame op, no
runtime op (TensorLists, TensorArrays, Where...), no host op on data; in practice the network
from the model's inputs up to where its post-processing starts. It runs as one static plan
(graph/plan.py, graph/executor.py) per set of input shapes; its outputs that the rest of the
graph reads (the *frontier*) enter the dynamic run as device values, and the rest of the graph
(:attr:`Island.graph`: the frontier nodes turned into Placeholders) runs as before.

A node the static planner cannot plan after all (a shape it needs from data: DataDependentError,
or any GraphError naming a node) leaves the island with everything that depends on it, and the
planning is tried again; an island of fewer than MIN_GPU_NODES kernels is not worth a plan.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from ...dtypes import HOST_ONLY
from ...errors import GraphError
from ...format.nodes import NodeDef
from ...ops import registry
from .. import executor
from ..graph import Graph, parse_ref
from ..plan import build_plan
from .scheduler import FRAME_OPS
from .values import DevBuf, Value

_log = logging.getLogger(__name__)

MIN_GPU_NODES = 8           # fewer kernels than this: the node-by-node run costs about the same
MAX_SHRINKS = 16            # plannings retried with a smaller island before giving up on it


@dataclass
class Island:
    nodes: frozenset              # node names the static plan runs
    frontier: list                # [(node, output)] the rest of the graph (or the caller) reads
    graph: Graph                  # the main graph with the island cut off (frontier -> Placeholder)
    seeded: dict = field(default_factory=dict)    # node -> number of output slots to seed
    plans: OrderedDict = field(default_factory=OrderedDict)     # input shapes -> _split(Plan) (LRU)


def _placeholder_ok(node) -> bool:
    return node.attrs.get("dtype") not in HOST_ONLY and node.attrs.get("dtype") != "resource"


def find(graph: Graph, targets: list[tuple[str, int]], excluded: frozenset = frozenset()) -> Island | None:
    """The island of ``graph`` for ``targets`` (None when it holds fewer than MIN_GPU_NODES
    kernels); ``excluded``: nodes known not to plan, kept out with their descendants."""
    order = graph.order(list(dict.fromkeys(name for name, _ in targets)))
    inside: set[str] = set()
    known: set[str] = set()       # folded on the host at plan time (constants, shape arithmetic)
    for n in order:
        sources = [ref[1:] if (src := parse_ref(ref)) is None else src[0] for ref in n.inputs]
        if n.name in excluded or not all(s in inside for s in sources):
            continue
        if n.op == "Const":
            inside.add(n.name)
            known.add(n.name)
        elif n.op == "Placeholder":
            if _placeholder_ok(n):
                inside.add(n.name)
        elif n.op not in FRAME_OPS and (op := registry.get(n.op)) is not None and op.runtime is None:
            folded = op.shape_only or all(s in known for s in sources)
            if folded or op.lower is not None:      # a host op on data is the dynamic part's
                inside.add(n.name)
                if folded:
                    known.add(n.name)
    kernels = [name for name in inside - known if graph.nodes[name].op != "Placeholder"]
    if len(kernels) < MIN_GPU_NODES:
        return None
    target_names = {name for name, _ in targets}
    frontier, seeded = [], {}
    for name in [n for n in inside if graph.nodes[n].op not in ("Const", "Placeholder")]:
        refs = set()
        outside = False
        for user in graph.consumers[name]:
            if user in inside:
                continue
            outside = True
            for src, idx in graph.data_inputs(graph.nodes[user]):
                if src == name:
                    refs.add(idx)
        refs |= {idx for t, idx in targets if t == name}
        if outside or name in target_names:
            seeded[name] = max(refs, default=0) + 1
            frontier += [(name, idx) for idx in sorted(refs)]
    if not frontier:
        return None
    removed = {n for n in inside if n not in seeded and graph.nodes[n].op not in ("Const", "Placeholder")}
    nodes = []
    for n in graph.nodes.values():
        if n.name in seeded:
            nodes.append(NodeDef(n.name, "Placeholder", [], {}))      # fed by the island's plan
        elif n.name not in removed:
            # a control edge from a node the plan ran is met; a data edge from one cannot exist
            # (that node would be in the frontier)
            inputs = [r for r in n.inputs if not (r.startswith("^") and r[1:] in removed)]
            nodes.append(n if len(inputs) == len(n.inputs) else NodeDef(n.name, n.op, inputs, n.attrs, n.device))
    return Island(frozenset(inside), frontier, Graph(nodes), seeded)


def _split(plan, frontier) -> tuple:
    """(the plan with only its GPU-computed outputs, their refs, [(ref, value)] of the outputs it
    folded at plan time): those are host values the rest of the graph takes as they are, not
    tensors to upload on every call."""
    on_gpu = [(ref, t) for ref, t in zip(frontier, plan.outputs) if t.value is None]
    folded = [(ref, t.value) for ref, t in zip(frontier, plan.outputs) if t.value is not None]
    if folded:      # (its staging buffer is for reading outputs back, which an island never does)
        plan = dataclasses.replace(plan, outputs=[t for _, t in on_gpu], staging=None, staging_offsets=[],
                                   staging_ring=[], ahead=[])
    return plan, [ref for ref, _ in on_gpu], folded


class IslandRunner:
    """The island of one model's main graph for given targets, shrunk as plannings fail."""

    def __init__(self, model, targets, enabled: bool = True):
        self.model = model
        self.targets = targets
        self.excluded: frozenset = frozenset()
        self.island = find(model.graph, targets) if enabled else None

    def run(self, feeds: dict, keep: list) -> dict[str, list] | None:
        """Run the island on ``feeds`` (placeholder -> (array, dtype)): {frontier node: outputs as
        Values (None where the rest of the graph reads nothing)}; None without an island. The
        output Tensors are appended to ``keep``: the caller holds them until its run is done."""
        for _ in range(MAX_SHRINKS):
            isl = self.island
            if isl is None:
                return None
            mine = {k: v for k, v in feeds.items() if k in isl.nodes}      # the placeholders it reads
            key = tuple(sorted((k, a.shape, d) for k, (a, d) in mine.items()))
            entry = isl.plans.get(key)
            if entry is None:
                try:
                    plan = build_plan(self.model, self.model.graph, {k: (a.shape, d) for k, (a, d) in mine.items()},
                                      isl.frontier)
                except GraphError as e:
                    self._shrink(e)
                    continue
                entry = isl.plans[key] = _split(plan, isl.frontier)
                while len(isl.plans) > self.model.plan_cache_size:     # as GraphModel's own plans
                    isl.plans.popitem(last=False)
            else:
                isl.plans.move_to_end(key)
            break
        else:
            self.island = None
            return None
        plan, on_gpu, folded = entry
        device = self.model.device
        sub = executor.submit(device, plan, {k: a for k, (a, _) in mine.items()}, on_device=True)
        tensors = executor.wait(device, sub)        # no read-back: the tensors' copies are submitted
        keep.extend(tensors)
        out = {name: [None] * n for name, n in isl.seeded.items()}
        for (name, idx), t in zip(on_gpu, tensors):
            out[name][idx] = Value(t.shape, t.dtype, dev=DevBuf(t.buffer, t.buffer.size), const=False)
        for (name, idx), value in folded:
            out[name][idx] = Value.of(value)
        return out

    def _shrink(self, e: GraphError) -> None:
        node = getattr(e, "node", None)
        name = getattr(node, "name", None)
        if name is None or self.island is None or name not in self.island.nodes:
            _log.debug("no static island: %s", e)
            self.island = None
            return
        self.excluded |= {name}
        _log.debug("static island without %s: %s", name, e)
        self.island = find(self.model.graph, self.targets, self.excluded)


__all__ = ["Island", "IslandRunner", "find", "MIN_GPU_NODES"]
