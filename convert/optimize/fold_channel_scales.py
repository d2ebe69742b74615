"""Fold a per-output-channel constant scale (and offset) after a convolution or matmul into its
weights and a BiasAdd: Keras 3's inference batch norm.

    Conv2D|DepthwiseConv2dNative|MatMul(x, W) [-> Add|AddV2|BiasAdd(a)] -> Mul(s) [-> Add|AddV2|BiasAdd(b)]
    =>  Conv(x, W * s) [-> BiasAdd(a * s + b)]

Keras 3 writes BatchNormalization as ``x * scale + offset`` (``batchnorm/mul_1``,
``batchnorm/add_1``) where tf_keras writes a FusedBatchNormV3 (folded by
:mod:`.fold_batch_norms`). Grappler's constant folding pushes the scale into a Conv2D's filter
but not into a DepthwiseConv2dNative's (nor a MatMul's), so the official converter leaves them
as conv -> Mul -> AddV2: two extra passes over every activation. After this rewrite the
existing fusions give ``FusedDepthwiseConv2dNative`` / ``_FusedConv2D`` / ``_FusedMatMul``
with BiasAdd and the activation, as for tf_keras.

The weights (and a bias before the scale: a Keras 3 conv with ``use_bias=True``) are scaled in
float64 and cast back to their dtype (as :mod:`.fold_batch_norms`). A scale, bias or offset is
folded only when it is a constant of one value per output channel (shape ``[C]``,
``[1, ..., 1, C]``, ``[1]`` or a scalar, never broadcasting the output to a higher rank), the
layout is channels-last, and the dtypes agree. Nothing is folded whose value another node
also sees: a conv read by another node, weights shared with another node, a node in ``keep``
(graph outputs); a Mul read by another node keeps its offset add as it is (the Mul alone is
folded). Scale, bias and offset constants are only read (they may be shared). Names: the new
weights are ``<conv>_weights``, the new bias ``<conv>_bias``; the BiasAdd takes the name of the
last node folded (the offset add, else the Mul) and the conv keeps its own; with no bias at all
the conv takes the Mul's name. Readers and fetches see the same names.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .util import consumers, const_value, make_const, node_map, node_name, output_index, rebuild

CONTRACTIONS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
OFFSETS = ("Add", "AddV2", "BiasAdd")


@dataclass
class _Match:
    conv: object                  # the contraction
    weights_node: object
    weights: np.ndarray
    channels: int                 # C, its output channels
    scale: np.ndarray | None = None   # [C]
    bias_node: object = None      # add between the conv and the Mul, and its [C] bias
    bias: np.ndarray | None = None
    offset_node: object = None    # add after the Mul, and its [C] offset
    offset: np.ndarray | None = None


def fold_channel_scales(graph_def, keep=()):
    nodes = node_map(graph_def)
    readers = consumers(graph_def)
    keep = set(keep)
    taken = set(nodes)
    skip, new_nodes = set(), []
    for mul in graph_def.node:
        m = _match(mul, nodes, readers, keep)
        if m is None:
            continue
        conv = m.conv
        w_name = _unique(conv.name + "_weights", taken)
        w_node = make_const(w_name, _scaled(conv, m.weights, m.scale), m.weights_node.attr["dtype"])
        new_conv = type(conv)()
        new_conv.CopyFrom(conv)
        new_conv.input[1] = w_name
        new_nodes.append(w_node)
        skip |= {conv.name, mul.name, m.weights_node.name}
        skip |= {n.name for n in (m.bias_node, m.offset_node) if n is not None}
        if m.bias is None and m.offset is None:
            new_conv.name = mul.name
            new_nodes.append(new_conv)
            continue
        bias = np.zeros(m.channels, np.float64)
        if m.bias is not None:
            bias += m.bias.astype(np.float64) * m.scale.astype(np.float64)
        if m.offset is not None:
            bias += m.offset.astype(np.float64)
        b_name = _unique(conv.name + "_bias", taken)
        b_node = make_const(b_name, bias.astype(m.weights.dtype), m.weights_node.attr["dtype"])
        last = m.offset_node if m.offset_node is not None else mul
        bias_add = type(conv)(name=last.name, op="BiasAdd",
                              input=[conv.name, b_name] + [r for r in last.input if r.startswith("^")])
        bias_add.attr["T"].CopyFrom(conv.attr["T"])
        bias_add.attr["data_format"].s = b"NHWC"
        new_nodes += [new_conv, b_node, bias_add]
    if not skip:
        return graph_def
    return rebuild(graph_def, skip=skip, extra=new_nodes)


def _unique(name: str, taken: set) -> str:
    out, i = name, 1
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def _only_reader(readers, node, reader) -> bool:
    """``reader`` is the one node reading ``node``, through output 0 and one input slot."""
    rs = readers.get(node.name, [])
    if len(rs) != 1 or rs[0] is not reader:
        return False
    refs = [r for r in reader.input if not r.startswith("^") and node_name(r) == node.name]
    return len(refs) == 1 and output_index(refs[0]) == 0


def _other_operand(node, name: str):
    """The ref of ``node``'s other data input, given that one of its two is ``name``."""
    data = [r for r in node.input if not r.startswith("^")]
    if len(data) != 2:
        return None
    if node_name(data[0]) == name:
        return data[1]
    if node_name(data[1]) == name:
        return data[0]
    return None


def output_channels(conv, weights) -> int | None:
    """Output channels of a channels-last contraction (None: a layout this rewrite leaves alone)."""
    if conv.op == "MatMul":
        if weights.ndim != 2:
            return None
        return weights.shape[0] if conv.attr["transpose_b"].b else weights.shape[1]
    if weights.ndim != 4 or conv.attr["data_format"].s not in (b"", b"NHWC"):
        return None
    return weights.shape[3] if conv.op == "Conv2D" else weights.shape[2] * weights.shape[3]


def per_channel(node, channels: int, out_rank: int, dtype) -> np.ndarray | None:
    """A Const's value as one value per output channel ([C]), or None when it is not one."""
    if node is None or node.op != "Const":
        return None
    value = const_value(node)
    if value.dtype != dtype or value.ndim > out_rank or any(d != 1 for d in value.shape[:-1]):
        return None
    if value.ndim and value.shape[-1] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).copy()


def _const_operand(node, name, nodes, channels, out_rank, dtype):
    ref = _other_operand(node, name)
    if ref is None or output_index(ref) != 0:
        return None
    return per_channel(nodes.get(node_name(ref)), channels, out_rank, dtype)


def _match(mul, nodes, readers, keep) -> _Match | None:
    if mul.op != "Mul" or any(r.startswith("^") for r in mul.input):
        return None      # (control dependencies: leave the ordering the graph asked for alone)
    data = list(mul.input)
    if len(data) != 2:
        return None
    for ref in data:
        m = _contraction(nodes.get(node_name(ref)), mul, nodes, readers, keep)
        if m is None or output_index(ref) != 0:
            continue
        out_rank = _rank(m.conv)
        head = m.bias_node if m.bias_node is not None else m.conv
        m.scale = _const_operand(mul, head.name, nodes, m.channels, out_rank, m.weights.dtype)
        if m.scale is None:
            return None
        m.offset_node, m.offset = _offset(mul, nodes, readers, keep, m.channels, out_rank, m.weights.dtype)
        return m
    return None


def _contraction(node, mul, nodes, readers, keep) -> _Match | None:
    """The contraction (and the bias add after it) that ``mul`` reads, when they can be folded."""
    if node is None or node.name in keep or not _only_reader(readers, node, mul):
        return None
    bias_node = None
    if node.op in OFFSETS:
        bias_node = node
        operands = [nodes.get(node_name(r)) for r in bias_node.input if not r.startswith("^")]
        node = next((n for n in operands if n is not None and n.op in CONTRACTIONS), None)
        if node is None or node.name in keep or not _only_reader(readers, node, bias_node):
            return None
        if bias_node.op == "BiasAdd" and (node_name(bias_node.input[0]) != node.name
                                          or bias_node.attr["data_format"].s not in (b"", b"NHWC")):
            return None
    if node.op not in CONTRACTIONS or any(r.startswith("^") for r in list(node.input) + list(getattr(bias_node, "input", []))):
        return None
    weights_node = nodes.get(node_name(node.input[1]))
    if weights_node is None or weights_node.op != "Const" or output_index(node.input[1]) != 0 \
            or len(readers.get(weights_node.name, [])) != 1 or weights_node.name in keep:
        return None
    weights = const_value(weights_node)
    channels = output_channels(node, weights) if weights.dtype.kind == "f" else None
    if channels is None:
        return None
    m = _Match(node, weights_node, weights, channels)
    if bias_node is not None:
        m.bias_node = bias_node
        m.bias = _const_operand(bias_node, node.name, nodes, channels, _rank(node), weights.dtype)
        if m.bias is None:
            return None
    return m


def _rank(conv) -> int:
    return 2 if conv.op == "MatMul" else 4


def _offset(mul, nodes, readers, keep, channels, out_rank, dtype):
    """(add, its per-channel offset) after the Mul, or (None, None) when it cannot be folded."""
    rs = readers.get(mul.name, [])
    if len(rs) != 1 or mul.name in keep or not _only_reader(readers, mul, rs[0]):
        return None, None
    add = rs[0]
    if add.op not in OFFSETS:
        return None, None
    if add.op == "BiasAdd" and (node_name(add.input[0]) != mul.name or add.attr["data_format"].s not in (b"", b"NHWC")):
        return None, None
    offset = _const_operand(add, mul.name, nodes, channels, out_rank, dtype)
    return (add, offset) if offset is not None else (None, None)


def _scaled(conv, weights: np.ndarray, scale: np.ndarray) -> np.ndarray:
    s = scale.astype(np.float64)
    if conv.op == "DepthwiseConv2dNative":      # filter [h, w, in, multiplier]: channel in * mult + m
        s = s.reshape(weights.shape[2], weights.shape[3])
    elif conv.op == "MatMul" and conv.attr["transpose_b"].b:   # [out, in]
        s = s[:, None]
    return (weights.astype(np.float64) * s).astype(weights.dtype)
