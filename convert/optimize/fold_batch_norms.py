"""Fold inference batch norms into the convolution before them.

    Conv2D|DepthwiseConv2dNative(x, W) [+ Add/AddV2/BiasAdd(b)] -> FusedBatchNorm*(gamma, beta, mean, var)
    =>  Conv(x, W * s) -> BiasAdd(beta - (mean - b) * s),   s = gamma / sqrt(var + eps)

As the official converter (same float64 arithmetic, same node names ``<conv>_weights`` and
``<conv>_bn_offset``, the BiasAdd keeps the batch norm's name, new nodes appended in the same
order), so the weights come out bit for bit the same. Safer than it: a conv (or add) read by
another node, or weights shared with another node, is left alone (the official rewrite would
change what the other reader sees), and so is a batch norm in training mode or whose other
outputs are read.
"""
from __future__ import annotations

import numpy as np

from .util import consumers, const_value, make_const, node_map, node_name, output_index, rebuild

BATCH_NORMS = {  # op -> (input positions: x, gamma, beta, mean, var), epsilon attribute
    "BatchNormWithGlobalNormalization": ((0, 4, 3, 1, 2), "variance_epsilon"),
    "FusedBatchNorm": ((0, 1, 2, 3, 4), "epsilon"),
    "FusedBatchNormV3": ((0, 1, 2, 3, 4), "epsilon"),
}
CONVS = ("Conv2D", "DepthwiseConv2dNative")


def fold_batch_norms(graph_def):
    nodes = node_map(graph_def)
    readers = consumers(graph_def)
    skip, new_nodes = set(), []
    for bn in graph_def.node:
        match = _match(bn, nodes, readers)
        if match is None:
            continue
        conv, add, bias, weights_node, weights, (gamma, beta, mean, var) = match
        eps = bn.attr[BATCH_NORMS[bn.op][1]].f
        if bias is not None:
            mean = mean - bias
        scale = 1.0 / np.sqrt(np.asarray(var + np.float32(eps), np.float64))
        if _scale_after_normalization(bn):
            scale = scale * gamma
        offset = -mean * scale + beta
        if conv.op == "Conv2D":
            per_element = scale
        else:  # depthwise filter [h, w, in, multiplier]: output channel = in * multiplier + m
            per_element = scale.reshape(weights.shape[2], weights.shape[3])
        scaled = (weights.astype(np.float64) * per_element).astype(weights.dtype)

        w_node = make_const(conv.name + "_weights", scaled, weights_node.attr["dtype"])
        new_conv = type(conv)()
        new_conv.CopyFrom(conv)
        new_conv.input[1] = w_node.name
        offset_node = make_const(conv.name + "_bn_offset", offset.astype(mean.dtype), nodes[_ref(bn, 3)].attr["dtype"])
        bias_add = type(conv)(name=bn.name, op="BiasAdd", input=[conv.name, offset_node.name])
        bias_add.attr["T"].CopyFrom(conv.attr["T"])
        bias_add.attr["data_format"].CopyFrom(conv.attr["data_format"])
        new_nodes += [w_node, new_conv, offset_node, bias_add]
        skip |= {bn.name, weights_node.name, conv.name} | ({add.name} if add is not None else set())
    if not skip:
        return graph_def
    return rebuild(graph_def, skip=skip, extra=new_nodes)


def _ref(bn, role: int) -> str:
    return node_name(bn.input[BATCH_NORMS[bn.op][0][role]])


def _match(bn, nodes, readers):
    if bn.op not in BATCH_NORMS:
        return None
    if bn.op != "BatchNormWithGlobalNormalization" and bn.attr["is_training"].b:
        return None
    if any(node_name(r) == bn.name and output_index(r) != 0 for n in readers.get(bn.name, []) for r in n.input):
        return None  # batch mean / variance outputs are read
    x = nodes.get(node_name(bn.input[0]))
    add = bias = None
    if x is not None and x.op in ("BiasAdd", "Add", "AddV2") and len(x.input) == 2:
        add = x
        a, b = (nodes.get(node_name(r)) for r in add.input)
        x, bias_node = (a, b) if a is not None and a.op in CONVS else (b, a)
        if bias_node is None or bias_node.op != "Const":
            return None
        bias = const_value(bias_node)
        if len(readers.get(add.name, [])) != 1:
            return None
    if x is None or x.op not in CONVS or len(readers.get(x.name, [])) != 1:
        return None
    weights_node = nodes.get(node_name(x.input[1]))
    if weights_node is None or weights_node.op != "Const" or len(readers.get(weights_node.name, [])) != 1:
        return None
    weights = const_value(weights_node)
    channels = weights.shape[3] if x.op == "Conv2D" else weights.shape[2] * weights.shape[3]
    params = []
    for role in (1, 2, 3, 4):
        p = nodes.get(_ref(bn, role))
        if p is None or p.op != "Const":
            return None
        params.append(const_value(p))
    if bias is not None and bias.shape not in ((channels,), ()):
        return None
    if any(p.shape != (channels,) for p in params):
        return None
    return x, add, bias, weights_node, weights, params


def _scale_after_normalization(bn) -> bool:
    return bn.op != "BatchNormWithGlobalNormalization" or bn.attr["scale_after_normalization"].b
