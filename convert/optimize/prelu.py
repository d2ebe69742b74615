"""PReLU: rebuild the ``Prelu`` op from the ops Keras expands it into, and fuse it into a
preceding fused conv / matmul.

Keras writes prelu(x) = relu(x) + (-alpha) * relu(-x); after Grappler that is
``AddV2(Relu(x), Mul(Const(-alpha), Relu(Neg(x))))``. :func:`rebuild_prelu` replaces it by
``Prelu(x, alpha)`` (the Relu node becomes the Prelu, keeping its name; the Const holds alpha),
:func:`fuse_prelu` appends it to a ``_FusedConv2D`` / ``_FusedMatMul`` /
``FusedDepthwiseConv2dNative`` with a single fused op (``fused_ops += [Prelu]``, ``num_args + 1``).
Both as the official converter, plus one guard: every node folded away (and the fused op) must
have no other reader, else the rewrite would change what that reader sees.
"""
from __future__ import annotations

from .util import consumers, const_value, fused_ops, node_map, node_name, rebuild, set_const_value

FUSED = ("_FusedConv2D", "_FusedMatMul", "FusedDepthwiseConv2dNative")


def rebuild_prelu(graph_def):
    nodes = node_map(graph_def)
    readers = consumers(graph_def)
    skip, rewire, negated = set(), {}, set()
    for add in graph_def.node:
        if add.op not in ("Add", "AddV2") or len(add.input) != 2:
            continue
        relu = nodes.get(node_name(add.input[0]))
        mul = nodes.get(node_name(add.input[1]))
        if relu is None or relu.op != "Relu" or mul is None or mul.op != "Mul":
            continue
        mul_in = [nodes.get(node_name(r)) for r in mul.input]
        alpha = next((n for n in mul_in if n is not None and n.op == "Const"), None)
        relu_neg = next((n for n in mul_in if n is not None and n.op == "Relu"), None)
        if alpha is None or relu_neg is None or len(relu_neg.input) != 1:
            continue
        neg = nodes.get(node_name(relu_neg.input[0]))
        if neg is None or neg.op != "Neg" or len(neg.input) != 1 or relu.input[0] != neg.input[0]:
            continue
        if any(len(readers.get(n.name, [])) != 1 for n in (relu, mul, relu_neg, neg)):
            continue
        relu.op = "Prelu"
        relu.input.append(alpha.name)
        del relu.attr["T"]
        if alpha.name not in negated:
            set_const_value(alpha, -const_value(alpha))
            negated.add(alpha.name)
        skip |= {mul.name, relu_neg.name, neg.name, add.name}
        rewire[add.name] = relu.name
    return rebuild(graph_def, skip=skip, rewire=rewire) if skip else graph_def


def fuse_prelu(graph_def):
    nodes = node_map(graph_def)
    readers = consumers(graph_def)
    skip, rewire = set(), {}
    for node in graph_def.node:
        if node.op != "Prelu":
            continue
        fused = nodes.get(node_name(node.input[0]))
        if fused is None or fused.op not in FUSED or len(fused_ops(fused)) > 1 \
                or len(readers.get(fused.name, [])) != 1:
            continue
        fused.input.append(node.input[1])
        fused.attr["fused_ops"].list.s.append(b"Prelu")
        fused.attr["num_args"].i += 1
        skip.add(node.name)
        rewire[node.name] = node.input[0]
    return rebuild(graph_def, skip=skip, rewire=rewire) if skip else graph_def
