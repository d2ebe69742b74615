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

from ..errors import GraphError
from ..graph.graph import Graph
from ..memory import device_dtype
from ..ops import registry


def as_stored(value) -> np.ndarray:
    """A value as a tensor of the runtime holds it (strings stay objects)."""
    v = np.asarray(value)
    if v.dtype == object or v.dtype.kind in "US" or v.dtype == np.bool_:
        return v
    want = device_dtype(str(v.dtype))
    return v if str(v.dtype) == want else v.astype(want)


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
            env[(node.name, 0)] = as_stored(feeds[node.name])
            continue
        if node.op == "Const":
            if node.name not in weights:
                raise GraphError(f"Const node {node.name!r} has no weight in the manifest")
            env[(node.name, 0)] = as_stored(weights[node.name])
            continue
        op = registry.get(node.op)
        if op is None:
            raise GraphError(f"op {node.op} is not in the registry", node)
        args = [env[ref] for ref in graph.data_inputs(node)]
        for i, v in enumerate(op.run_reference(node.attrs, args)):
            env[(node.name, i)] = as_stored(v)
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

    from ..memory import to_device_array

    typed = {}                               # as GraphModel hands feeds to the executor
    for name, v in feeds.items():
        dtype = "bool" if np.asarray(v).dtype == np.bool_ else device_dtype(str(np.asarray(v).dtype))
        typed[name] = (to_device_array(v, dtype), dtype)
    outs = HostOnly(Model()).run(typed, targets)
    return {t: as_stored(v) for t, v in zip(targets, outs)}
