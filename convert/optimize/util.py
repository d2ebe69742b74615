"""Small GraphDef helpers shared by the rewrites: names, node maps, consumers, constants."""
from __future__ import annotations

import numpy as np


def node_name(ref: str) -> str:
    """'^a' / 'a:1' / 'a' -> 'a'."""
    ref = ref[1:] if ref.startswith("^") else ref
    head, sep, tail = ref.rpartition(":")
    return head if sep and tail.isdigit() else ref


def output_index(ref: str) -> int:
    """'a:1' -> 1, 'a' -> 0 (control inputs '^a' -> -1)."""
    if ref.startswith("^"):
        return -1
    _, sep, tail = ref.rpartition(":")
    return int(tail) if sep and tail.isdigit() else 0


def node_map(graph_def) -> dict:
    """name -> NodeDef (the same objects: edits show in the graph). Duplicate names are an error."""
    out = {}
    for n in graph_def.node:
        if n.name in out:
            raise ValueError(f"duplicate node name {n.name!r}")
        out[n.name] = n
    return out


def consumers(graph_def) -> dict[str, list]:
    """node name -> the nodes that read any of its outputs (data inputs only, not ^control)."""
    out: dict[str, list] = {}
    for n in graph_def.node:
        for ref in n.input:
            if not ref.startswith("^"):
                out.setdefault(node_name(ref), []).append(n)
    return out


def exact_readers(graph_def, name: str) -> list:
    """Nodes whose input list holds exactly ``name`` (output 0 spelled without ':0')."""
    return [n for n in graph_def.node if name in n.input]


def const_value(node) -> np.ndarray:
    from tensorflow.python.framework import tensor_util

    if node.op != "Const":
        raise ValueError(f"node {node.name!r} is {node.op}, not Const")
    return tensor_util.MakeNdarray(node.attr["value"].tensor)


def set_const_value(node, value: np.ndarray, dtype=None) -> None:
    from tensorflow.core.framework import attr_value_pb2
    from tensorflow.python.framework import tensor_util

    value = np.asarray(value)
    node.attr["value"].CopyFrom(attr_value_pb2.AttrValue(
        tensor=tensor_util.make_tensor_proto(value, dtype or value.dtype.type, value.shape)))


def make_const(name: str, value: np.ndarray, dtype_attr=None):
    """A Const NodeDef; ``dtype_attr`` (an AttrValue) is copied when given, else derived."""
    from tensorflow.core.framework import node_def_pb2
    from tensorflow.python.framework import dtypes

    value = np.asarray(value)
    node = node_def_pb2.NodeDef(name=name, op="Const")
    if dtype_attr is not None:
        node.attr["dtype"].CopyFrom(dtype_attr)
    else:
        node.attr["dtype"].type = dtypes.as_dtype(value.dtype).as_datatype_enum
    set_const_value(node, value, dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype)
    return node


def rebuild(graph_def, skip=(), extra=(), rewire=None):
    """A new GraphDef: ``graph_def``'s nodes minus ``skip`` (names), control inputs on skipped
    nodes dropped, inputs renamed by ``rewire`` ({old ref: new ref}), then ``extra`` nodes."""
    from tensorflow.core.framework import graph_pb2

    skip, rewire = set(skip), rewire or {}
    out = graph_pb2.GraphDef()
    for n in graph_def.node:
        if n.name in skip:
            continue
        new = out.node.add()
        new.CopyFrom(n)
        refs = [rewire.get(r, r) for r in n.input if not (r.startswith("^") and r[1:] in skip)]
        del new.input[:]
        new.input.extend(refs)
    out.node.extend(extra)
    out.library.CopyFrom(graph_def.library)
    out.versions.CopyFrom(graph_def.versions)
    return out


def fused_ops(node) -> list[str]:
    return [s.decode() for s in node.attr["fused_ops"].list.s]
