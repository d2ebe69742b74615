"""Fuse ``DepthwiseConv2dNative`` with its BiasAdd and activation into
``FusedDepthwiseConv2dNative`` (a TF.js op; Grappler fuses only Conv2D and MatMul).

Three sweeps as the official converter: conv + BiasAdd + activation, then conv + BiasAdd, then
conv + activation (``fused_ops`` [NoOp, act]). Activations: Relu, Relu6, Elu. The fused node
keeps the conv's name; readers of the bias-add / activation are rewired to it. Guard (not in
the official rewrite): each node fused away, but the last, must have no other reader.
"""
from __future__ import annotations

from .util import consumers, node_map, node_name, rebuild

ACTIVATIONS = ("Relu", "Relu6", "Elu")
CONV = "DepthwiseConv2dNative"


def fuse_depthwise(graph_def):
    for sweep in (_bias_and_activation, _bias, _activation):
        graph_def = _fuse(graph_def, sweep)
    return graph_def


def _only_reader(readers, node) -> bool:
    return len(readers.get(node.name, [])) == 1


def _bias(node, nodes, readers):
    if node.op != "BiasAdd" or not node.input:
        return None
    conv = nodes.get(node_name(node.input[0]))
    ok = conv is not None and conv.op == CONV and _only_reader(readers, conv)
    return (conv, node, None) if ok else None


def _bias_and_activation(node, nodes, readers):
    if node.op not in ACTIVATIONS or len(node.input) != 1:
        return None
    bias = nodes.get(node_name(node.input[0]))
    if bias is None or not _only_reader(readers, bias):
        return None
    match = _bias(bias, nodes, readers)
    return (match[0], match[1], node) if match else None


def _activation(node, nodes, readers):
    if node.op not in ACTIVATIONS or len(node.input) != 1:
        return None
    conv = nodes.get(node_name(node.input[0]))
    ok = conv is not None and conv.op == CONV and _only_reader(readers, conv)
    return (conv, None, node) if ok else None


def _fuse(graph_def, match_fn):
    nodes = node_map(graph_def)
    readers = consumers(graph_def)
    skip, rewire = set(), {}
    for node in graph_def.node:
        match = match_fn(node, nodes, readers)
        if not match:
            continue
        conv, bias, act = match
        conv.op = "FusedDepthwiseConv2dNative"
        conv.attr["num_args"].i = 0
        if bias is not None:
            conv.input.append(bias.input[1])
            conv.attr["fused_ops"].list.s.append(b"BiasAdd")
            conv.attr["num_args"].i += 1
            skip.add(bias.name)
            rewire[bias.name] = conv.name
        else:
            conv.attr["fused_ops"].list.s.append(b"NoOp")
        if act is not None:
            conv.attr["fused_ops"].list.s.append(act.op.encode())
            skip.add(act.name)
            rewire[act.name] = conv.name
    return rebuild(graph_def, skip=skip, rewire=rewire) if skip else graph_def
