"""Training-mode batch norms (batch statistics) rewritten into plain ops.

tf_keras LayerNormalization reshapes its input to [1, groups, size, 1] and calls
``FusedBatchNormV3(is_training=True)`` with empty mean / variance. TF.js ignores
``is_training`` and outputs NaN; this runtime computes batch statistics correctly, but the
model must run in both. So, for each FusedBatchNorm / V2 / V3 with ``is_training`` whose
only used output is ``y``:

    mean = Mean(x, axes, keep_dims)                 axes: every axis but the channel axis
    var  = Mean(SquaredDifference(x, mean), axes, keep_dims)      (biased, as TF normalizes)
    y    = (x - mean) * Rsqrt(var + epsilon) * scale + offset      scale/offset on the channel axis

The last node keeps the batch norm's name. Runs before Grappler, which folds the constant
reshapes (and ``* ones`` / ``+ zeros``) away.
"""
from __future__ import annotations

import numpy as np

from .util import const_value, consumers, make_const, node_name, output_index, rebuild

OPS = ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
CHANNEL_AXIS = {"NHWC": (4, 3), "NCHW": (4, 1), "NDHWC": (5, 4), "NCDHW": (5, 1)}


def training_batch_norms(graph_def) -> list:
    readers = consumers(graph_def)
    found = []
    for n in graph_def.node:
        if n.op not in OPS:
            continue
        training = n.attr["is_training"].b if "is_training" in n.attr else True   # TF's default
        fmt = (n.attr["data_format"].s or b"NHWC").decode()
        if not training or fmt not in CHANNEL_AXIS:
            continue
        used = {output_index(r) for m in readers.get(n.name, []) for r in m.input if node_name(r) == n.name}
        if used <= {0}:
            found.append(n)
    return found


def rewrite_training_batch_norms(graph_def):
    found = training_batch_norms(graph_def)
    if not found:
        return graph_def
    by_name = {n.name: n for n in graph_def.node}
    extra = []
    for bn in found:
        extra += _plain_ops(bn, _filled_with(by_name, bn.input[1]), _filled_with(by_name, bn.input[2]))
    return rebuild(graph_def, skip={bn.name for bn in found}, extra=extra)


def _filled_with(nodes, ref):
    """The scalar a ``Fill`` (tf.ones / tf.zeros of a computed size) or a uniform Const holds."""
    n = nodes.get(node_name(ref))
    if n is not None and n.op == "Fill":
        n = nodes.get(node_name(n.input[1]))
    if n is None or n.op != "Const":
        return None
    v = const_value(n)
    return float(v.flat[0]) if v.size and np.all(v == v.flat[0]) else None


def _plain_ops(bn, scale_value=None, offset_value=None) -> list:
    from tensorflow.core.framework import node_def_pb2

    fmt = (bn.attr["data_format"].s or b"NHWC").decode()
    rank, channel = CHANNEL_AXIS[fmt]
    axes = np.array([a for a in range(rank) if a != channel], np.int32)
    x, scale, offset = bn.input[0], bn.input[1], bn.input[2]
    controls = [r for r in bn.input if r.startswith("^")]
    prefix = bn.name + "/batch_stats"
    t = bn.attr["T"]
    nodes = []

    def node(name, op, inputs, **attrs):
        n = node_def_pb2.NodeDef(name=f"{prefix}/{name}", op=op, input=inputs)
        if op not in ("Const",):
            n.attr["T"].CopyFrom(t)
        for k, v in attrs.items():
            if isinstance(v, bool):
                n.attr[k].b = v
            else:
                n.attr[k].type = v
        nodes.append(n)
        return n.name

    def const(name, value):
        c = make_const(f"{prefix}/{name}", value)
        nodes.append(c)
        return c.name

    from tensorflow.python.framework import dtypes

    axes_name = const("axes", axes)
    mean = node("mean", "Mean", [x, axes_name] + controls, keep_dims=True, Tidx=dtypes.int32.as_datatype_enum)
    sq = node("squared_difference", "SquaredDifference", [x, mean])
    var = node("variance", "Mean", [sq, axes_name], keep_dims=True, Tidx=dtypes.int32.as_datatype_enum)
    eps = const("epsilon", np.array(bn.attr["epsilon"].f, dtypes.as_dtype(t.type).as_numpy_dtype))
    inv = node("rsqrt", "Rsqrt", [node("variance_epsilon", "AddV2", [var, eps])])
    centered = node("centered", "Sub", [x, mean])
    normalized = node("normalized", "Mul", [centered, inv])
    if scale_value == 1.0 and offset_value == 0.0:   # tf_keras LayerNormalization: ones, zeros
        nodes[-1].name = bn.name
        return nodes
    if channel != rank - 1:   # scale / offset [C] -> [C, 1, ...] to broadcast on the channel axis
        shape = const("param_shape", np.array([-1] + [1] * (rank - 1 - channel), np.int32))
        scale = node("scale", "Reshape", [scale, shape], Tshape=dtypes.int32.as_datatype_enum)
        offset = node("offset", "Reshape", [offset, shape], Tshape=dtypes.int32.as_datatype_enum)
        if "U" in bn.attr:   # scale / offset have the batch norm's parameter type
            for n in nodes[-2:]:
                n.attr["T"].CopyFrom(bn.attr["U"])
    scaled = node("scaled", "Mul", [normalized, scale])
    node("y", "AddV2", [scaled, offset])
    nodes[-1].name = bn.name
    return nodes
