"""Run one registry op on a device, as a one-node graph (op tests and conformance use this).

Inputs at the op's ``host_inputs`` positions become Const nodes (an axis, a shape...), the others
Placeholders fed at run time, so the op runs exactly as it would inside a model."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..format.artifacts import ModelArtifacts
from ..format.nodes import NodeDef
from ..dtypes import dtype_of
from ..ops import registry
from .model import GraphModel


def op_model(op: str, attrs: dict, inputs: list[np.ndarray], device, n_outputs: int = 1,
             const_inputs=None, precision: str = "float32") -> GraphModel:
    opdef = registry.get(op)
    consts = ({i for i in range(len(inputs)) if opdef.is_host_input(i, len(inputs))}
              if const_inputs is None else set(const_inputs))
    nodes, weights, refs = [], {}, []
    for i, a in enumerate(inputs):
        name = f"in{i}"
        refs.append(name)
        if i in consts:
            nodes.append(NodeDef(name, "Const", [], {"dtype": dtype_of(a)}))
            weights[name] = a
        else:
            nodes.append(NodeDef(name, "Placeholder", [], {"dtype": dtype_of(a), "shape": tuple(a.shape)}))
    nodes.append(NodeDef("op", op, refs, dict(attrs)))
    art = ModelArtifacts(path=Path(f"<{op}>"), format="graph-model", generated_by=None, converted_by=None,
                         model_topology={}, nodes=nodes, functions=[], signature=None, weights=weights,
                         weight_specs=[], user_defined_metadata=None, model_initializer=None,
                         initializer_signature=None)
    return GraphModel(art, device, precision=precision)


def run_op(op: str, attrs: dict, inputs: list[np.ndarray], device, n_outputs: int = 1,
           const_inputs=None, precision: str = "float32") -> list[np.ndarray]:
    """Outputs 0..n_outputs-1 of ``op`` computed on ``device`` (at ``precision``: precision.py)."""
    model = op_model(op, attrs, inputs, device, n_outputs, const_inputs, precision)
    feeds = {f"in{i}": a for i, a in enumerate(inputs) if model.graph.nodes[f"in{i}"].op == "Placeholder"}
    return model.execute(feeds, [f"op:{k}" for k in range(n_outputs)])
