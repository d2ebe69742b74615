"""TensorList ops with constant indices (what an unrolled ``tf.while_loop`` over a TensorArray
leaves) rewritten into plain tensor ops:

    TensorListGetItem(TensorListFromTensor(t), i)          -> GatherV2(t, i, axis 0)
    TensorListGetItem(SetItem(...SetItem(l, i, v)...), i)  -> v (the last item written at i)
    TensorListStack(SetItem(...(Reserve(n), 0, v0)..., n-1, v_n-1)) -> Pack(v0, ..., v_n-1)
    TensorListLength(Reserve(n) / SetItem chain)            -> Const n

Lists whose indices are not all constants, or that are not completely written before they are
stacked, are left alone (the op check then names the TensorList ops).
"""
from __future__ import annotations

import numpy as np

from .util import const_value, make_const, node_map, node_name, rebuild

LIST_OPS = ("TensorListFromTensor", "TensorListReserve", "TensorListSetItem", "TensorListGetItem",
            "TensorListStack", "TensorListLength")


class _Ints:
    """Static integer values of tensors (constants first; shapes only when needed)."""

    def __init__(self, graph_def, nodes):
        self.graph_def, self.nodes, self._static = graph_def, nodes, None

    def __call__(self, ref):
        n = self.nodes.get(node_name(ref))
        if n is not None and n.op == "Const":
            v = const_value(n)
        else:
            if self._static is None:
                from .static_values import StaticValues

                self._static = StaticValues(self.graph_def)
            v = self._static(ref)
        return int(v) if v is not None and v.size == 1 and v.dtype.kind in "iu" else None


def _writes(nodes, ref, ints):
    """Follow a SetItem chain back to its root: (root node, {index: item ref}) or None."""
    items = {}
    n = nodes.get(node_name(ref))
    while n is not None and n.op == "TensorListSetItem":
        i = ints(n.input[1])
        if i is None:
            return None
        items.setdefault(i, n.input[2])         # the latest write wins
        n = nodes.get(node_name(n.input[0]))
    return (n, items) if n is not None else None


def rewrite_tensor_lists(graph_def):
    nodes = node_map(graph_def)
    ints = _Ints(graph_def, nodes)
    replaced, extra = set(), []
    for n in graph_def.node:
        new = None
        if n.op == "TensorListGetItem":
            new = _get_item(n, nodes, ints)
        elif n.op == "TensorListStack":
            new = _stack(n, nodes, ints)
        elif n.op == "TensorListLength":
            chain = _writes(nodes, n.input[0], ints)
            if chain and chain[0].op == "TensorListReserve":
                size = ints(chain[0].input[1])
                new = [make_const(n.name, np.array(size, np.int32))] if size is not None else None
        if new:
            replaced.add(n.name)
            extra += new
    return rebuild(graph_def, skip=replaced, extra=extra) if replaced else graph_def


def _identity(name, ref, dtype_attr):
    from tensorflow.core.framework import node_def_pb2

    n = node_def_pb2.NodeDef(name=name, op="Identity", input=[ref])
    n.attr["T"].CopyFrom(dtype_attr)
    return n


def _get_item(n, nodes, ints):
    from tensorflow.core.framework import node_def_pb2
    from tensorflow.python.framework import dtypes

    i = ints(n.input[1])
    chain = _writes(nodes, n.input[0], ints) if i is not None else None
    if chain is None:
        return None
    root, items = chain
    if i in items:
        return [_identity(n.name, items[i], n.attr["element_dtype"])]
    if root.op != "TensorListFromTensor":
        return None
    index = make_const(n.name + "/index", np.array(i, np.int32))
    axis = make_const(n.name + "/axis", np.array(0, np.int32))
    g = node_def_pb2.NodeDef(name=n.name, op="GatherV2", input=[root.input[0], index.name, axis.name])
    g.attr["Tparams"].CopyFrom(n.attr["element_dtype"])
    g.attr["Tindices"].type = dtypes.int32.as_datatype_enum
    g.attr["Taxis"].type = dtypes.int32.as_datatype_enum
    g.attr["batch_dims"].i = 0
    return [index, axis, g]


def _stack(n, nodes, ints):
    from tensorflow.core.framework import node_def_pb2

    chain = _writes(nodes, n.input[0], ints)
    if chain is None:
        return None
    root, items = chain
    if root.op == "TensorListReserve":
        size = ints(root.input[1])
    elif root.op == "TensorListFromTensor" and not items:
        return [_identity(n.name, root.input[0], n.attr["element_dtype"])]
    else:
        return None
    if size is None or size <= 0 or sorted(items) != list(range(size)):
        return None
    p = node_def_pb2.NodeDef(name=n.name, op="Pack", input=[items[i] for i in range(size)])
    p.attr["T"].CopyFrom(n.attr["element_dtype"])
    p.attr["N"].i = size
    p.attr["axis"].i = 0
    return [p]
