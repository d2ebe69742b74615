"""Turn ``Add``/``AddV2`` after a Conv2D / DepthwiseConv2dNative / MatMul into ``BiasAdd``, so
Grappler's remap pass (and the depthwise fusion) can fuse it.

As the official converter: the add's first input must be the contraction, and the contraction
must have no other reader. Safer than it: the other operand must be 1-D (a bias per output
channel) -- a constant's shape, or TensorFlow's static shape for other nodes (unknown rank:
converted, as the official converter does); an add of a full tensor or a scalar is not a
BiasAdd and is left alone.
"""
from __future__ import annotations

from .util import const_value, exact_readers, node_map, node_name

CONTRACTIONS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")


def normalize_bias_add(graph_def):
    nodes = node_map(graph_def)
    candidates = []
    for node in graph_def.node:
        if node.op not in ("Add", "AddV2") or len(node.input) != 2:
            continue
        first = nodes.get(node_name(node.input[0]))
        if first is None or first.op not in CONTRACTIONS or len(exact_readers(graph_def, node.input[0])) != 1:
            continue
        candidates.append(node)
    ranks = _ranks(graph_def, [n.input[1] for n in candidates if nodes.get(node_name(n.input[1]), n).op != "Const"])
    for node in candidates:
        other = nodes.get(node_name(node.input[1]))
        rank = const_value(other).ndim if other is not None and other.op == "Const" else ranks.get(node.input[1])
        if rank not in (1, None):
            continue
        node.op = "BiasAdd"
        node.attr["data_format"].s = b"NHWC"
    return graph_def


def _ranks(graph_def, refs) -> dict:
    """Static ranks of tensors (None: unknown), from importing the graph into TensorFlow."""
    if not refs:
        return {}
    import tensorflow as tf

    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
    out = {}
    for ref in refs:
        name = ref if ":" in ref else ref + ":0"
        try:
            out[ref] = g.get_tensor_by_name(name).shape.rank
        except (KeyError, ValueError):
            out[ref] = None
    return out
