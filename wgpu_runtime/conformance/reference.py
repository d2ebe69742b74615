"""The numpy reference executor: a graph model run on the host through the registry's numpy
references (the oracle the GPU lowerings are tested against).

It runs the graph *as the file has it* (not the runtime's load-time rewrites, which it thereby
checks). Every value is stored as the runtime stores it (float64 -> float32, int64 -> int32, as
TF.js narrows them), so the reference sees the tensors a GPU node would. A graph with control
flow or runtime ops (TensorList, TensorArray...) runs on the dynamic executor's scheduler with
every op computed by its numpy reference on the host: then only the requested tensors come back.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import dtype_of, host_array, to_device_array
from ..errors import GraphError
from ..graph.graph import Graph
from ..ops import registry


def is_dynamic(graph: Graph) -> bool:
    """Whether the graph needs the dynamic executor (control flow, runtime ops)."""
    from ..graph.dynamic import needs_dynamic

    return needs_dynamic(graph)


def evaluate(graph: Graph, weights: dict, feeds: dict[str, np.ndarray],
             targets: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
    """Every tensor needed for ``targets`` of a graph without control flow:
    {(node, output index): value}. ``feeds``: placeholder node name -> array (its dtype)."""
    env: dict[tuple[str, int], np.ndarray] = {}
    for node in graph.order(list(dict.fromkeys(name for name, _ in targets))):
        if node.op == "Placeholder":
            if node.name not in feeds:
                raise GraphError(f"placeholder {node.name!r} is needed but was not fed")
            env[(node.name, 0)] = host_array(feeds[node.name])
            continue
        if node.op == "Const":
            if node.name not in weights:
                raise GraphError(f"Const node {node.name!r} has no weight in the manifest")
            env[(node.name, 0)] = host_array(weights[node.name])
            continue
        op = registry.get(node.op)
        if op is None:
            raise GraphError(f"op {node.op} is not in the registry", node)
        args = [env[ref] for ref in graph.data_inputs(node)]
        for i, v in enumerate(op.run_reference(node.attrs, args)):
            env[(node.name, i)] = host_array(v)
    return env


def evaluate_dynamic(artifacts, graph: Graph, device, feeds: dict[str, np.ndarray],
                     targets: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
    """``targets`` of a graph with control flow, every op on its numpy reference (the dynamic
    executor's scheduler and runtime ops, none of its kernels)."""
    from ..graph.dynamic import DynamicExecutor
    from ..graph.dynamic.values import Value

    class HostOnly(DynamicExecutor):
        def _gpu(self, node, op, ins):       # where the executor would launch kernels
            self._read([v for v in ins if v.host is None])
            return [Value.of(o, const=False) for o in self._reference(op, node, [v.host for v in ins])]

    class Model:                             # what the executor reads of a GraphModel
        def __init__(self):
            self.artifacts, self.graph, self.weights, self.device = artifacts, graph, artifacts.weights, device

    typed = {}                               # as GraphModel hands feeds to the executor
    for name, v in feeds.items():
        dtype = dtype_of(v)
        typed[name] = (to_device_array(v, dtype), dtype)
    outs = HostOnly(Model()).run(typed, targets)
    return {t: host_array(v) for t, v in zip(targets, outs)}
