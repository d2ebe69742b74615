"""Split fused ops whose epilogue TF.js or this runtime cannot run back into plain ops.

TF.js runs ``_FusedConv2D`` / ``_FusedMatMul`` / ``FusedDepthwiseConv2dNative`` with
``fused_ops`` = [BiasAdd (or NoOp for depthwise), activation?], activations Relu, Relu6, Elu,
Prelu, LeakyRelu, Sigmoid (tfjs-core fused_util.applyActivation); it rejects FusedBatchNorm
epilogues and fails on others (e.g. Tanh, which Grappler fuses when oneDNN's rewrites are on).
The runtime's own epilogue set is ``wgpu_runtime.ops.fused.ACTIVATIONS``. A fused node outside
both is rewritten as base op -> BiasAdd -> activation; the last node keeps its name.
"""
from __future__ import annotations

from wgpu_runtime.ops.fused import ACTIVATIONS as RUNTIME_ACTIVATIONS

from .util import fused_ops, rebuild

TFJS_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Prelu", "LeakyRelu", "Sigmoid"}
ACTIVATIONS = TFJS_ACTIVATIONS & set(RUNTIME_ACTIVATIONS)
BASE = {"_FusedConv2D": ("Conv2D", ("T", "strides", "padding", "explicit_paddings", "data_format",
                                    "dilations", "use_cudnn_on_gpu")),
        "_FusedMatMul": ("MatMul", ("T", "transpose_a", "transpose_b")),
        "FusedDepthwiseConv2dNative": ("DepthwiseConv2dNative", ("T", "strides", "padding", "explicit_paddings",
                                                                 "data_format", "dilations"))}


def supported(node) -> bool:
    ops = fused_ops(node)
    first_ok = {"BiasAdd"} | ({"NoOp"} if node.op == "FusedDepthwiseConv2dNative" else set())
    if not ops or ops[0] not in first_ok or len(ops) > 2:
        return False
    return len(ops) == 1 or ops[1] in ACTIVATIONS


def unfuse_unsupported(graph_def):
    replace, extra = set(), []
    for node in graph_def.node:
        if node.op in BASE and not supported(node):
            replace.add(node.name)
            extra += unfuse(node)
    return rebuild(graph_def, skip=replace, extra=extra) if replace else graph_def


def unfuse(node) -> list:
    """The plain nodes computing what the fused ``node`` computes (last one named as it)."""
    from tensorflow.core.framework import node_def_pb2

    base_op, attrs = BASE[node.op]
    ops = fused_ops(node)
    data_inputs = [r for r in node.input if not r.startswith("^")]
    controls = [r for r in node.input if r.startswith("^")]
    args = data_inputs[2:]
    out = []

    def add(op, inputs, keep=()):
        n = node_def_pb2.NodeDef(name=f"{node.name}/{op}", op=op, input=inputs)
        n.attr["T"].CopyFrom(node.attr["T"])
        for k in keep:
            if k in node.attr:
                n.attr[k].CopyFrom(node.attr[k])
        out.append(n)
        return n.name

    x = add(base_op, data_inputs[:2] + controls, [a for a in attrs if a != "T"])
    rest = list(ops)
    if rest and rest[0] in ("BiasAdd", "NoOp"):
        if rest.pop(0) == "BiasAdd":
            x = add("BiasAdd", [x, args.pop(0)], ["data_format"] if base_op != "MatMul" else [])
    elif rest and rest[0] == "FusedBatchNorm":
        rest.pop(0)
        bn = node_def_pb2.NodeDef(name=f"{node.name}/FusedBatchNormV3", op="FusedBatchNormV3",
                                  input=[x] + args[:4])
        args = args[4:]
        bn.attr["T"].CopyFrom(node.attr["T"])
        bn.attr["U"].type = node.attr["T"].type
        bn.attr["epsilon"].f = node.attr["epsilon"].f
        bn.attr["is_training"].b = False
        bn.attr["data_format"].s = node.attr["data_format"].s or b"NHWC"
        out.append(bn)
        x = bn.name
    for act in rest:
        inputs = [x] + ([args.pop(0)] if act == "Prelu" else [])
        n = node_def_pb2.NodeDef(name=f"{node.name}/{act}", op=act, input=inputs)
        if act != "Prelu":
            n.attr["T"].CopyFrom(node.attr["T"])
        if act == "LeakyRelu":
            n.attr["alpha"].f = node.attr["leakyrelu_alpha"].f
        out.append(n)
        x = n.name
    out[-1].name = node.name   # readers of the fused node now read the last step
    return out
